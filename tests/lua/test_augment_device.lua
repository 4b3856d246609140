-- views made from raw loader batches (augment_on = "device"): the raw loader's u8 images and ids,
-- augment.apply with ids giving the loader's own views, the recipe key loader.augment_on, and a
-- training run with the views made by the trainer equal, bit for bit, to one with the loader's
-- views (on the CPU; on a GPU the same path runs the CUDA kernel, compared in test_cuda_augment)
local tap = require "tap"
local vr = require "visreg"
local recipe = require "visreg.recipe"
local trainer = require "visreg.trainer"
local data, aug, util = vr.data, vr.augment, vr.util
local tensor = require "visreg.tensor"

local function same(a, b)
  if a:numel() ~= b:numel() then return false end
  local x, y = a:contiguous():to("cpu"):to_list(), b:contiguous():to("cpu"):to_list()
  for i = 1, #x do if x[i] ~= y[i] then return false end end
  return true
end

-- a synthetic dataset: 40 1 x 9 x 7 u8 images
local n = 40
local vals = {}
for i = 0, n * 63 - 1 do vals[#vals + 1] = (i * 37 + math.floor(i / 5)) % 256 end
local images = tensor.tensor(vals, { dtype = "u8" }):view(n, 1, 9, 7)
local labels = {}
for i = 0, n - 1 do labels[#labels + 1] = i % 4 end
local ds = data.from_tensors(images, tensor.tensor(labels, { dtype = "i64" }), 4)
local pipeline = { aug.random_resized_crop { scale = { 0.3, 1 } }, aug.hflip { p = 0.5 },
  aug.jitter { brightness = 0.4, contrast = 0.4, p = 0.8 }, aug.solarize { p = 0.3 }, aug.normalize { mean = 0.3, std = 0.4 } }

local views = data.loader(ds, { batch = 16, seed = 5, workers = 0 })
views:add_view(8, pipeline):add_view({ 6, 5 }, pipeline)
local raw = data.loader(ds, { batch = 16, seed = 5, workers = 2, raw = true })
tap.ok(raw:raw() and not views:raw(), "data.loader{raw = true} makes a raw loader")
local p = aug.build(pipeline)
local ok_images, ok_views, batches = true, true, 0
for _ = 1, 3 do -- 2 batches an epoch (drop_last), over two epochs
  local bv, br = views:next(), raw:next()
  if bv == nil then bv, br = views:next(), raw:next() end
  batches = batches + 1
  local im, ids = br:images(), br:indices()
  if im:dtype() ~= "u8" or im:size(0) ~= 16 or not same(ids, bv:indices()) or br:epoch() ~= bv:epoch() then ok_images = false end
  for k = 0, 15 do
    if not same(im:select(0, k), images:select(0, ids:get(k))) then ok_images = false end
  end
  for v = 0, 1 do
    local size = v == 0 and 8 or { 6, 5 }
    local made = aug.apply(p, im, { size = size, seed = 5, epoch = br:epoch(), view = v, ids = ids })
    if not same(made, bv:view(v)) then ok_views = false end
  end
end
tap.ok(ok_images, "raw batches hold the shuffled samples' u8 images, ids and epoch")
tap.ok(ok_views, "augment.apply with the batch's ids and epoch gives the loader's views exactly")
tap.raises(function() raw:next():view(0) end, { "raw batch" }, "a raw batch has no views")
local im0 = images:select(0, 0)
local lst = aug.apply(p, tensor.stack({ im0, im0, im0 }, 0), { ids = { 7, 7, 2 }, seed = 1 })
tap.ok(same(lst:select(0, 0), lst:select(0, 1)) and not same(lst:select(0, 0), lst:select(0, 2)),
  "ids may be a list; an id, not a position, keys the view")
views:close()
raw:close()

if vr.C.vr_cuda_available() ~= 0 then
  local im = images:narrow(0, 0, 16)
  local ids = tensor.tensor({ 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3 }, { dtype = "i64" })
  local c = aug.apply(p, im, { size = 8, seed = 2, epoch = 1, view = 1, ids = ids })
  local g = aug.apply(p, im:to("cuda"), { size = 8, seed = 2, epoch = 1, view = 1, ids = ids:to("cuda") })
  local d = (c - g:to("cpu")):abs():max():item()
  tap.ok(g:device() == "cuda" and d <= 1e-4, "views made on CUDA equal the CPU's", string.format("max |diff| %g", d))
else
  tap.skip("cuda views", "no CUDA device")
end

-- the recipe key
local base = tap.scratch("augdev")
local src = [[
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment
return vr.recipe {
  seed = 4, epochs = 1, batch = 32, device = "cpu",
  data = vr.data.fashion_mnist { subset = 192, test_subset = 100 },
  views = { global = { n = 2, pipeline = { aug.random_resized_crop { scale = { 0.4, 1 } }, aug.hflip { p = 0.5 },
    aug.jitter { brightness = 0.4, contrast = 0.4, p = 0.8 }, aug.normalize { mean = 0.286, std = 0.353 } } },
    ["local"] = { n = 1, size = 12, pipeline = { aug.random_resized_crop { scale = { 0.1, 0.4 } } } } },
  model = function()
    local enc = nn.smallcnn { width = 4 }
    return enc, nn.mlp { enc.out_dim, 16, 8 }
  end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 16 },
  optim = vr.optim.adamw { lr = 3e-3 },
  eval = { online_probe = true, linear_probe = false, knn = false },
  log = { every = 100, progress = "plain" },
  loader = { workers = 1 },
}
]]
local path = base .. "/tiny.lua"
util.write_file(path, src)
tap.eq(recipe.load(path).loader.augment_on, "auto", "loader.augment_on defaults to auto")
tap.eq(recipe.load(path, { "loader.augment_on=device" }).loader.augment_on, "device", "--set loader.augment_on=device")
tap.raises(function() recipe.load(path, { "loader.augment_on=gpu" }) end, { "loader.augment_on", "auto, cpu or device" },
  "an unknown augment_on is refused")

if tap.can_train("trainer views") then
  local function train(on)
    local r, source = recipe.load(path, { "loader.augment_on=" .. on })
    local s, t = trainer.train(r, { out = base .. "/" .. on, source = source, recipe_path = path, quiet = true })
    return s, t
  end
  local sc, tc = train("cpu")
  local sd, td = train("device")
  tap.ok(tc.augment_on == "cpu" and td.augment_on == "device" and td.view_specs ~= nil and tc.view_specs == nil,
    "the trainer takes raw batches when augment_on is device")
  local a = vr.checkpoint.load(base .. "/cpu/checkpoint.safetensors")
  local b = vr.checkpoint.load(base .. "/device/checkpoint.safetensors")
  local diff, count = 0, 0
  for name, t in pairs(a) do
    count = count + 1
    if not b[name] or not same(t, b[name]) then diff = diff + 1 end
  end
  tap.ok(count > 10 and diff == 0 and sc.final_loss == sd.final_loss,
    "training with views made from raw batches is bit-identical to the loader's views",
    string.format("%d of %d tensors differ; loss %s vs %s", diff, count, tostring(sc.final_loss), tostring(sd.final_loss)))
end
os.execute("rm -rf " .. util.shell_quote(base))
os.exit(tap.done(), true)
