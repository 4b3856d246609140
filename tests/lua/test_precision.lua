-- mixed precision: tensor.autocast (dtypes, restoring the switch, errors) and a tiny recipe with
-- precision = "bf16" training a few steps on the CPU: the loss is finite and close to the f32 run
-- from the same seed (bf16 operands change it by a fraction of a percent at first)
local tap = require "tap"
local vr = require "visreg"
local tensor = require "visreg.tensor"
local recipe = require "visreg.recipe"
local trainer = require "visreg.trainer"
local util = vr.util
local C = vr.C

-- tensor.autocast
vr.manual_seed(1)
local a, b = vr.randn(4, 16), vr.randn(16, 3)
local y = vr.autocast("bf16", function() return a:matmul(b) end)
tap.eq(y:dtype(), "f32", "autocast matmul gives f32")
local yb = a:bf16():matmul(b:bf16()):to("f32")
tap.ok(y:sub(yb):abs():max():item() == 0, "autocast matmul is the bf16 matmul of the rounded operands")
tap.ok(y:sub(a:matmul(b)):abs():max():item() > 0, "and differs from the f32 matmul")
tap.eq(tonumber(C.vr_autocast_get()), tonumber(C.VR_F32), "the switch is off after autocast")
local ok, err = pcall(tensor.autocast, "bf16", function() error("boom") end)
tap.ok(not ok and tostring(err):find("boom") and tonumber(C.vr_autocast_get()) == tonumber(C.VR_F32),
  "an error inside autocast restores the switch", tostring(err))
ok, err = pcall(tensor.autocast, "f64", function() end)
tap.ok(not ok and tostring(err):find("expected f32 %(off%) or bf16"), "autocast refuses f64", tostring(err))

if not tap.can_train("bf16 training") then os.exit(tap.done(), true) end

local base = tap.scratch("precision")
local path = base .. "/tiny.lua"
util.write_file(path, [[
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment
return vr.recipe {
  seed = 5, epochs = 1, batch = 32, device = "cpu",
  data = vr.data.fashion_mnist { subset = 192, test_subset = 100 },
  views = { global = { n = 2, pipeline = { aug.random_resized_crop { scale = { 0.5, 1 } }, aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = function()
    local enc = nn.smallcnn { width = 8 }
    return enc, nn.mlp { enc.out_dim, 64, 32 }
  end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 64 },
  optim = vr.optim.adamw { lr = 1e-3 },
  eval = { online_probe = true, linear_probe = false, knn = false },
  log = { every = 1, progress = "plain" },
  loader = { workers = 1 },
}
]])

local function run(precision)
  local out = base .. "/" .. precision
  local r, source = recipe.load(path, { "precision=" .. precision })
  trainer.train(r, { out = out, source = source, recipe_path = path, quiet = true, stop_at_step = 4 })
  local losses = {}
  for line in io.lines(out .. "/metrics.jsonl") do
    local j = util.json_decode(line)
    if j.type == "step" then losses[#losses + 1] = j.loss end
  end
  return losses
end

local l32, l16 = run("f32"), run("bf16")
tap.eq(#l16, 4, "the bf16 run logs its four steps")
local finite, worst = true, 0
for i = 1, #l16 do
  finite = finite and l16[i] == l16[i] and math.abs(l16[i]) < math.huge
  worst = math.max(worst, math.abs(l16[i] - l32[i]) / math.abs(l32[i]))
end
tap.ok(finite, "the bf16 losses are finite", util.json_encode(l16))
tap.ok(worst < 2e-2, "the bf16 losses follow the f32 run (within 2%)",
  string.format("worst relative difference %.3g: %s vs %s", worst, util.json_encode(l16), util.json_encode(l32)))
tap.ok(worst > 0, "bf16 changes the losses (autocast was on)", util.json_encode(l16))
print(string.format("# bf16 vs f32 losses: worst relative difference %.3g", worst))
local rj = util.json_decode(util.read_file(base .. "/bf16/recipe.json"))
tap.eq(rj.precision, "bf16", "recipe.json records the precision")
os.execute("rm -rf " .. util.shell_quote(base))
os.exit(tap.done(), true)
