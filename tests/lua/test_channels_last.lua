-- channels-last (memory_format): F.conv2d{channels_last}, nn layers and model:to_memory_format give
-- the same features and parameter gradients as the NCHW model with the same weights; round trip;
-- modules that cannot switch say so; the recipe key is checked
local tap = require "tap"
local vr = require "visreg"
local nn = vr.nn
local F = nn.functional
local recipe = require "visreg.recipe"

local function maxdiff(a, b)
  if a:shape_str() ~= b:shape_str() then return math.huge end
  return (a:to("f64") - b:to("f64")):abs():max():item()
end
-- relative to the largest magnitude (batch norm in training amplifies f32 rounding, which the two
-- layouts do in different orders)
local function reldiff(a, b) return maxdiff(a, b) / math.max(1, a:abs():max():item()) end

-- F.conv2d with channels_last against the NCHW convolution of the permuted tensors
vr.manual_seed(1)
local x = vr.randn(2, 3, 7, 6)
local w = vr.randn(4, 3, 3, 3)
local b = vr.randn(4)
local y = F.conv2d(x, w, b, { stride = 2, padding = 1 })
local yh = F.conv2d(x:permute(0, 2, 3, 1):contiguous(), w:permute(0, 2, 3, 1), b, { stride = 2, padding = 1, channels_last = true })
tap.eq(yh:shape_str(), "[2, 4, 3, 4]", "F.conv2d channels_last: y is [N, Ho, Wo, Cout]")
tap.ok(maxdiff(yh:permute(0, 3, 1, 2), y) < 1e-5, "F.conv2d channels_last equals NCHW on permuted inputs",
  maxdiff(yh:permute(0, 3, 1, 2), y))
tap.raises(function() return F.conv2d(x, w, b, { channels_last = true }) end, { "vr_conv2d_nhwc", "[Cout, kh, kw, C/groups]" },
  "F.conv2d channels_last on an NCHW weight names the expected layout")

-- two copies of a model with the same weights, one switched to channels_last
local function twins(build)
  vr.manual_seed(5)
  local a = build()
  local c = build()
  c:load_state_dict(a:state_dict())
  c:to_memory_format("channels_last")
  return a, c
end

-- tol: features and (relative) gradients; f32 batch norm in training amplifies the rounding of
-- its reductions, done in different orders in the two layouts, to ~1e-5 of the largest gradient
local function compare(a, c, input, what, tol)
  tol = tol or 1e-5
  for _, mode in ipairs { "train", "eval" } do
    a[mode](a)
    c[mode](c)
    a:zero_grad()
    c:zero_grad()
    local fa, fc = a(input), c(input)
    tap.eq(fc:shape_str(), fa:shape_str(), what .. " (" .. mode .. "): same feature shape")
    tap.ok(maxdiff(fa, fc) < tol, what .. " (" .. mode .. "): same features", maxdiff(fa, fc))
    fa:sum():backward()
    fc:sum():backward()
    local pa, pc = a:named_parameters(), c:named_parameters()
    local worst, shapes = 0, true
    for i, e in ipairs(pa) do
      local ga, gc = e[2]:grad(), pc[i][2]:grad()
      if not gc or gc:shape_str() ~= e[2]:shape_str() then shapes = false else worst = math.max(worst, reldiff(ga, gc)) end
    end
    tap.ok(shapes, what .. " (" .. mode .. "): every parameter gets a gradient in its own shape")
    tap.ok(worst < (mode == "train" and 10 * tol or tol), what .. " (" .. mode .. "): same parameter gradients", worst)
  end
  local ba, bc = a:named_buffers(), c:named_buffers()
  local worst = 0
  for i, e in ipairs(ba) do worst = math.max(worst, maxdiff(e[2], bc[i][2])) end
  tap.ok(worst < tol, what .. ": same batch-norm running statistics", worst)
end

local img = vr.randn(4, 1, 28, 28)
local r18, r18cl = twins(function() return nn.resnet18 { in_channels = 1, stem = "cifar", width = 8 } end)
compare(r18, r18cl, img, "resnet18 channels_last")
-- in f64 the two layouts agree to rounding: the check that catches a wrong permutation anywhere
local r64, r64cl = twins(function() return nn.resnet18 { in_channels = 1, stem = "cifar", width = 4, dtype = "f64" } end)
compare(r64, r64cl, vr.randn(4, 1, 16, 16, { dtype = "f64" }), "resnet18 f64 channels_last", 1e-10)
tap.eq(r18cl(img):shape_str(), "[4, 64]", "resnet18 channels_last takes [N, C, H, W] images and gives [N, 8*width]")
tap.ok(tostring(r18cl):find("channels_last", 1, true), "the model prints its layout")

local inet, inetcl = twins(function() return nn.resnet18 { in_channels = 3, stem = "imagenet", width = 4 } end)
compare(inet, inetcl, vr.randn(4, 3, 64, 64), "resnet18 imagenet stem (max pooling) channels_last")
local scnn, scnncl = twins(function() return nn.smallcnn { width = 4, pool = 2 } end)
compare(scnn, scnncl, vr.randn(3, 1, 28, 28), "smallcnn pool=2 channels_last")

-- round trip: back to contiguous, every flag off and the same output as the NCHW twin
local n_on = 0
for _, m in ipairs(r18cl:named_modules()) do if m[2].channels_last then n_on = n_on + 1 end end
tap.ok(n_on >= 40, "to_memory_format sets the flag on the convolutions, norms, pooling and the model", n_on)
r18cl:to_memory_format("contiguous")
local any_on = false
for _, m in ipairs(r18cl:named_modules()) do if m[2].channels_last then any_on = true end end
tap.ok(not any_on, "to_memory_format(\"contiguous\") clears every flag")
r18:eval()
r18cl:eval()
tap.ok(maxdiff(r18(img), r18cl(img)) < 1e-5, "after the round trip the model is the NCHW model again",
  maxdiff(r18(img), r18cl(img)))
tap.ok(r18cl:to_memory_format("channels_last") == r18cl, "to_memory_format returns the model")
for _, e in ipairs(r18cl:named_parameters()) do
  if e[1] == "0.weight" then tap.eq(e[2]:shape_str(), "[8, 1, 3, 3]", "conv weights keep [Cout, C/g, kh, kw]") end
end

-- per-layer options
local conv = nn.Conv2d(3, 5, 3, { padding = 1, channels_last = true })
tap.eq(conv(vr.randn(2, 6, 6, 3)):shape_str(), "[2, 6, 6, 5]", "nn.Conv2d{channels_last} maps [N, H, W, C]")
local bn = nn.BatchNorm2d(5, { channels_last = true })
tap.eq(bn(vr.randn(2, 6, 6, 5)):shape_str(), "[2, 6, 6, 5]", "nn.BatchNorm2d{channels_last} keeps [N, H, W, C]")
tap.raises(function() return bn(vr.randn(2, 5, 6, 6)) end, { "BatchNorm2d", "[N, H, W, 5]" },
  "BatchNorm2d channels_last names the expected layout")

-- modules that cannot switch
local vit = nn.vit { image_size = 8, patch = 4, in_channels = 1, width = 8, depth = 1, heads = 2 }
tap.raises(function() vit:to_memory_format("channels_last") end, { "to_memory_format", "ViT", "channels_last" },
  "a ViT refuses channels_last, naming the module")
tap.ok(not vit.patch_embed.channels_last, "a refused switch changes nothing")
tap.raises(function() r18:to_memory_format("nhwc") end, { "to_memory_format", "contiguous", "channels_last", "nhwc" },
  "an unknown memory format is refused")
tap.ok(vit:to_memory_format("contiguous") == vit, "any model can be made contiguous")

-- under autocast: bf16 activations in both layouts agree to bf16 precision
local ya = vr.autocast("bf16", function() return scnn(vr.randn(2, 1, 28, 28)) end)
tap.ok(ya ~= nil, "smallcnn runs under autocast")
vr.manual_seed(9)
local xi = vr.randn(2, 1, 28, 28)
scnn:eval()
scnncl:eval()
local f1 = vr.autocast("bf16", function() return r18(xi) end)
r18cl:eval()
local f2 = vr.autocast("bf16", function() return r18cl(xi) end)
tap.ok(maxdiff(f1, f2) < 0.05 * math.max(1, f1:abs():max():item()), "resnet18 under autocast: channels_last features match",
  maxdiff(f1, f2))

-- the recipe key
local function def(extra)
  local t = {
    data = vr.data.fashion_mnist { subset = 64 },
    views = { global = { n = 2, pipeline = {} } },
    model = function() return nn.smallcnn { width = 4 } end,
    loss = vr.loss.visreg { lambda = 0.6, slices = 16 },
  }
  for k, v in pairs(extra) do t[k] = v end
  return vr.recipe(t)
end
tap.eq(def({}).memory_format, "contiguous", "memory_format defaults to contiguous")
tap.eq(def({ memory_format = "channels_last" }).memory_format, "channels_last", "memory_format = channels_last is accepted")
tap.raises(function() def({ memory_format = "nhwc" }) end, { "memory_format", "contiguous", "channels_last", "nhwc" },
  "a bad memory_format is refused with the valid values")
local r = def({})
recipe.apply_overrides(r, { "memory_format=channels_last" })
tap.eq(r.memory_format, "channels_last", "--set memory_format=channels_last")
recipe.apply_overrides(r, { "memory_format=bad" })
tap.raises(function() recipe.check(r) end, { "memory_format" }, "a bad --set memory_format fails the check")


-- the trainer switches the encoder (not the projector); `bench train --set` reaches the key
if tap.can_train("memory_format in the trainer and bench train") then
  local util = vr.util
  local trainer = require "visreg.trainer"
  local base = tap.scratch("channels_last")
  local path = base .. "/tiny.lua"
  util.write_file(path, [[
local vr = require "visreg"
local nn = vr.nn
return vr.recipe {
  name = "tiny-cl", seed = 1, epochs = 1, batch = 16, device = "cpu", memory_format = "channels_last",
  data = vr.data.fashion_mnist { subset = 64, test_subset = 32 },
  views = { global = { n = 2, pipeline = {} } },
  model = function()
    local enc = nn.resnet18 { in_channels = 1, stem = "cifar", width = 4 }
    return enc, nn.mlp { enc.out_dim, 32, 16 }
  end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 16 },
  loader = { workers = 0 },
}
]])
  local t = trainer.setup(recipe.load(path))
  tap.ok(t.enc.channels_last and t.enc["0"].channels_last, "the trainer switches the encoder to channels_last")
  tap.ok(not t.proj["0"].channels_last, "the projector is left as it is")
  local t2 = trainer.setup(recipe.load(path, { "memory_format=contiguous" }))
  tap.ok(not t2.enc.channels_last and not t2.enc["0"].channels_last, "--set memory_format=contiguous keeps NCHW")
  local q = util.shell_quote
  local rc, out = tap.sh(q(VISREG_EXE) .. " bench train " .. q(path) .. " --steps 1 --warmup 0 --json")
  tap.ok(rc == 0 and out:find('"bench":"train"', 1, true), "bench train runs a channels_last recipe", out)
  rc, out = tap.sh(q(VISREG_EXE) .. " bench train " .. q(path) .. " --steps 1 --warmup 0 --set memory_format=nchw")
  tap.ok(rc ~= 0 and out:find("memory_format", 1, true), "bench train --set memory_format=nchw is refused", out)
  os.execute("rm -rf " .. q(base))
end

os.exit(tap.done(), true)
