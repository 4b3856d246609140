-- training end to end on a Fashion-MNIST subset: the loss falls, the probes beat chance widely,
-- the run folder holds its files, a checkpoint round-trips, and a resumed run is bit-identical
-- to an uninterrupted one
local tap = require "tap"
local vr = require "visreg"
local recipe = require "visreg.recipe"
local trainer = require "visreg.trainer"
local util = vr.util

if not tap.can_train("training") then os.exit(tap.done(), true) end

local base = tap.scratch("train")
local src = [[
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment
return vr.recipe {
  seed = 3, epochs = 3, batch = 64, device = "cpu",
  data = vr.data.fashion_mnist { subset = 640, test_subset = 500 },
  views = { global = { n = 2, pipeline = { aug.random_resized_crop { scale = { 0.5, 1 } }, aug.hflip { p = 0.5 },
    aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = function()
    local enc = nn.smallcnn { width = 8 }
    return enc, nn.mlp { enc.out_dim, 64, 32 }
  end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 64 },
  optim = vr.optim.adamw { lr = 3e-3, weight_decay = 0.01 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 0.5 } },
  eval = { probe_iters = 100, probe_l2 = { 1e-3 } },
  log = { every = 5, progress = "plain" },
  loader = { workers = 1 },
}
]]
local path = base .. "/tiny.lua"
util.write_file(path, src)

local function train(out, overrides, extra)
  local r, source = recipe.load(path, overrides)
  local o = { out = out, source = source, recipe_path = path, overrides = overrides, quiet = true }
  for k, v in pairs(extra or {}) do o[k] = v end
  return trainer.train(r, o)
end

-- a full run
local t0 = vr.now()
local summary = train(base .. "/a", {})
tap.ok(summary ~= nil, "a short training run finishes")
for _, f in ipairs { "recipe.lua", "recipe.json", "run.json", "metrics.jsonl", "checkpoint.safetensors", "summary.json" } do
  tap.ok(util.file_exists(base .. "/a/" .. f), "the run folder holds " .. f)
end
local steps, epochs = {}, {}
for line in io.lines(base .. "/a/metrics.jsonl") do
  local j = util.json_decode(line)
  if j.type == "step" then steps[#steps + 1] = j else epochs[#epochs + 1] = j end
end
tap.eq(#epochs, 3, "one metrics line per epoch")
tap.ok(#steps >= 5 and steps[1].lr and steps[1].lambda and steps[1].shape and steps[1].invariance and steps[1].images_per_second,
  "step lines hold each loss term, lr, lambda and images/s", util.json_encode(steps[1]))
tap.ok(epochs[3].loss < epochs[1].loss, "the loss falls", string.format("%.4f -> %.4f", epochs[1].loss, epochs[3].loss))
tap.ok(epochs[3].embedding_std and epochs[3].effective_rank and epochs[3].effective_rank > 1,
  "epoch lines hold the embedding std and effective rank", util.json_encode(epochs[3]))
local sj = util.json_decode(util.read_file(base .. "/a/summary.json"))
tap.ok(sj.linear_probe and sj.linear_probe > 0.5, "the linear probe beats chance (10%) widely", tostring(sj.linear_probe))
tap.ok(sj.knn and sj.knn > 0.4, "the kNN probe beats chance widely", tostring(sj.knn))
tap.ok(sj.train_seconds > 0 and sj.epochs == 3 and sj.images_per_second > 0, "summary holds train_seconds, epochs, images/s")
local first_run = vr.now() - t0

-- checkpoint round trip: the saved model evaluates as the trained one
local tensors, meta = vr.checkpoint.load(base .. "/a/checkpoint.safetensors")
tap.ok(tensors["encoder.0.weight"] and tensors["optim.encoder.0.weight.exp_avg"] and meta.recipe_source:find("smallcnn"),
  "the checkpoint holds the model, optimizer state and recipe")
local r2 = recipe.load(path)
local t2 = trainer.setup(r2, { quiet = true })
trainer.restore(t2, base .. "/a/checkpoint.safetensors")
local same = true
for name, t in pairs(t2.enc:state_dict()) do
  local a, b = t:to_list(), tensors["encoder." .. name]:to_list()
  for i = 1, #a do if a[i] ~= b[i] then same = false end end
end
tap.ok(same, "restoring a checkpoint gives back the same parameters and buffers")

-- visreg eval on the run folder gives the summary's probes (the same encoder and data)
local cli = require "visreg.cli"
local rc = cli.eval({ base .. "/a", "--quiet" })
local ej = util.json_decode(util.read_file(base .. "/a/eval.json") or "{}")
tap.ok(rc == 0 and ej.linear_probe and math.abs(ej.linear_probe - sj.linear_probe) < 1e-9 and ej.knn == sj.knn,
  "visreg eval reproduces the run's linear probe and kNN", util.json_encode(ej))

-- resume exactness: stop mid-epoch 2 (step 13 of 30), resume, compare with the full run
train(base .. "/b", {}, { stop_at_step = 13 })
local _, mb = vr.checkpoint.load(base .. "/b/checkpoint.safetensors")
local st = util.json_decode(mb.state)
tap.ok(st.step == 13 and st.epoch == 1 and st.batch_index == 3, "an interruption saves the position mid-epoch", mb.state)
train(base .. "/b", {}, { resume = base .. "/b" })
local ta = vr.checkpoint.load(base .. "/a/checkpoint.safetensors")
local tb = vr.checkpoint.load(base .. "/b/checkpoint.safetensors")
local diff, count = 0, 0
for name, t in pairs(ta) do
  local u = tb[name]
  if not u then diff = diff + 1 else
    local a, b = t:to_list(), u:to_list()
    for i = 1, #a do if a[i] ~= b[i] then diff = diff + 1; break end end
  end
  count = count + 1
end
tap.ok(diff == 0 and count > 10, "a resumed run is bit-identical to an uninterrupted one",
  string.format("%d of %d tensors differ", diff, count))

-- --set reaches the trainer
local s3 = train(base .. "/c", { "epochs=1", "eval.linear_probe=false", "eval.knn=false" })
tap.ok(s3.epochs == 1 and s3.linear_probe == nil, "overrides change the run", util.json_encode(s3))

print(string.format("# first run %.1f s", first_run))
os.execute("rm -rf " .. util.shell_quote(base))
os.exit(tap.done(), true)
