-- sweep files: every block and distribution to the list of trials, and every bad file refused with
-- its line and column (visreg.sweep.spec over visreg.yaml); nothing here trains
local tap = require "tap"
local vr = require "visreg"
local util = vr.util
local spec = require "visreg.sweep.spec"

local base = tap.scratch("sweep_spec")
local recipe = util.read_file("recipes/fmnist_visreg.lua") and (os.getenv("PWD") .. "/recipes/fmnist_visreg.lua")

-- writes a sweep file (recipe line prepended) and reads it
local n = 0
local function file(body, with_recipe)
  n = n + 1
  local path = string.format("%s/s%d.yaml", base, n)
  util.write_file(path, (with_recipe == false and "" or ("recipe: " .. recipe .. "\n")) .. body)
  return path
end
local function read(body, opts) local p = file(body); return spec.read(p, opts), p end
local function fails(body, patterns, what)
  local p = file(body)
  tap.raises(function() local s = spec.read(p); spec.validate(s, spec.trials(s)) end, patterns, what)
  return p
end

---------------------------------------------------------------- blocks
local s = read("grid:\n  loss.lambda: [0.4, 0.6, 0.8]\n  loss.slices: [256, 1024]\n")
local trials = spec.trials(s)
tap.eq(#trials, 6, "a grid is the Cartesian product")
tap.eq(trials[1].folder, "0000-loss.lambda=0.4-loss.slices=256", "folders are named by index and values")
tap.eq(trials[2].folder, "0001-loss.lambda=0.4-loss.slices=1024", "the last grid key varies fastest")
tap.eq(trials[6].folder, "0005-loss.lambda=0.8-loss.slices=1024", "the last trial")
tap.check("every trial's overrides load the recipe", function() return spec.validate(s, trials) end)

s = read("zip:\n  optim.lr: [1.0e-3, 2.0e-3]\n  optim.weight_decay: [0.05, 0.1]\nseeds: [0, 1]\n")
trials = spec.trials(s)
tap.eq(#trials, 4, "zip positions x seeds")
tap.eq(trials[1].folder, "0000-optim.lr=0.001-optim.weight_decay=0.05-seed=0", "zip values go together, seed last")
tap.eq(trials[4].folder, "0003-optim.lr=0.002-optim.weight_decay=0.1-seed=1", "seeds are innermost")
tap.eq(table.concat(spec.overrides(s, trials[4]), " "), "optim.lr=0.002 optim.weight_decay=0.1 seed=1", "the --set list")

local body = [[
set: { epochs: 2, model.projector: [64, 32] }
grid: { loss.lambda: [0.5, 0.7] }
random:
  n: 5
  seed: 3
  params:
    optim.lr: { loguniform: [1.0e-4, 1.0e-2] }
    loss.weights.shape: { uniform: [0.5, 2] }
    model.width: { choice: [8, 16] }
    log.every: { randint: [1, 3] }
seeds: [7]
]]
s = read(body)
trials = spec.trials(s)
tap.eq(#trials, 10, "grid x random draws x seeds")
local ok_draws = true
for _, t in ipairs(trials) do
  local v = {}
  for _, kv in ipairs(t.values) do v[kv[1]] = kv[2] end
  ok_draws = ok_draws and v["optim.lr"] >= 1e-4 and v["optim.lr"] <= 1e-2 and v["loss.weights.shape"] >= 0.5
    and v["loss.weights.shape"] <= 2 and (v["model.width"] == 8 or v["model.width"] == 16)
    and v["log.every"] % 1 == 0 and v["log.every"] >= 1 and v["log.every"] <= 3 and t.seed == 7
end
tap.ok(ok_draws, "every draw lies in its distribution's range")
local again = spec.trials(read(body))
tap.eq(again[6].folder, trials[6].folder, "draws are reproducible from the seed")
local other = spec.trials(read((body:gsub("seed: 3", "seed: 4"))))
tap.ok(other[1].folder ~= trials[1].folder, "another seed draws other values", other[1].folder)
tap.eq(spec.overrides(s, trials[1])[2], "model.projector={64,32}", "a list value is set as {a,b}")
tap.check("random draws and list values load the recipe", function() return spec.validate(s, trials) end)
local lr = trials[1].values[2][2]
tap.eq(tonumber(string.format("%.6g", lr)), lr, "a draw is rounded to 6 significant digits (the folder and --set agree)")

s = read("grid: { loss.lambda: [0.5] }\n")
tap.eq(s.name, "s" .. n, "the name defaults to the file's")
tap.eq(s.parallel, 1, "parallel defaults to 1")
tap.eq(s.metric .. " " .. s.mode, "linear_probe max", "the metric defaults to the linear probe, maximised")
s = read("devices: [0, 1]\nper_device: 2\n")
tap.eq(s.parallel, 4, "devices x per_device trials at once by default")
tap.eq(#spec.trials(s), 1, "a file with no blocks is one trial")

local long = read("grid:\n  optim.weight_decay: [0.05]\n  loss.weights.shape: [1.5]\n  loss.weights.center: [0.5]\n" ..
  "  loss.weights.scale: [2.5]\n  eval.probe_lr: [0.02]\n")
local f = spec.trials(long)[1].folder
tap.ok(#f <= 96 and f:match("^0000%-") and f:match("~%x+$"), "a long folder name is shortened with a hash", f)

-- the grid of recipes/sweeps/lambda_slices.yaml: every kind of axis with early stopping
s = spec.read("recipes/sweeps/lambda_slices.yaml")
tap.eq(#spec.trials(s), 288, "recipes/sweeps/lambda_slices.yaml: 6 x 2 x 8 x 3 trials")
tap.eq(s.early_stop.rungs[2] .. " " .. s.early_stop.keep, "2 0.5", "early_stop read")

---------------------------------------------------------------- errors, with line and column
local p = fails("grid:\n  loss.lamda: [0.4, 0.6]\n", { ":3:3:", "unknown key 'loss.lamda'", "loss.lambda" },
  "an unknown recipe key names its line and column and the nearest valid keys")
fails("grid:\n  loss.lambda: [0.4, abc]\n", { ":3:", "loss.lambda", "expected a number" },
  "a value of the wrong type is refused at its key")
fails("set: { epochs: 2 }\ngrid:\n  batch: [0, 64]\n", { ":4:3:", "batch" }, "a value the recipe refuses (batch 0)")
fails("grid:\n\tloss.lambda: [0.4]\n", { ":3:1:", "tab" }, "a tab is refused with its position")
fails("grid:\n  loss.lambda: [0.4]\n  loss.lambda: [0.6]\n", { ":4:3:", "duplicate key 'loss.lambda'" },
  "a duplicate key is refused")
fails("grid:\n  loss.lambda: [0.4, 0.6\n", { "s" }, "an unclosed list is refused")
fails("gird:\n  loss.lambda: [0.4]\n", { ":2:1:", "unknown key 'gird'", "grid" }, "an unknown block names the nearest")
fails("grid:\n  loss.lambda: []\n", { ":3:3:", "empty" }, "an empty list is refused")
fails("grid: []\n", { ":2:", "expected a mapping" }, "a block of the wrong kind is refused")
fails("zip:\n  optim.lr: [0.001, 0.002]\n  optim.weight_decay: [0.05]\n", { ":4:3:", "zip", "same count" },
  "zip lists of different lengths are refused")
fails("random:\n  n: 2\n  params:\n    optim.lr: { logunifrom: [0.001, 0.01] }\n",
  { ":5:17:", "unknown distribution 'logunifrom'", "loguniform" }, "an unknown distribution names the nearest")
fails("random:\n  n: 2\n  params:\n    optim.lr: { loguniform: [0, 0.01] }\n", { ":5:", "0 < low" },
  "loguniform needs a positive low bound")
fails("random:\n  n: 2\n  params:\n    optim.lr: { uniform: [0.01, 0.001] }\n", { "low < high" }, "uniform needs low < high")
fails("random:\n  n: 0\n  params:\n    optim.lr: { uniform: [0.001, 0.01] }\n", { ":3:", "random.n" }, "n must be at least 1")
fails("random:\n  n: 2\n", { "params" }, "random needs params")
fails("seeds: [0, -1]\n", { ":2:", "seeds" }, "a negative seed is refused")
fails("grid:\n  loss.lambda: [0.4]\nset:\n  loss.lambda: 0.5\n", { ":3:3:", "already given in set", ":5:3)" },
  "a key swept and set is refused")
fails("grid:\n  seed: [1, 2]\nseeds: [0]\n", { "seed", "already given" }, "seed swept twice is refused")
fails("parallel: two\n", { ":2:", "parallel" }, "parallel must be a count")
fails("early_stop: { rungs: [2, 1] }\n", { "increasing" }, "rungs must increase")
fails("early_stop: { rungs: [1], keep: 1.5 }\n", { "keep" }, "keep must be a fraction")
fails("mode: maximum\n", { ":2:", "max or min" }, "mode is max or min")
fails("slurm: { partion: gpu }\n", { "unknown key 'partion'", "partition" }, "an unknown slurm option")
fails("grid:\n  eval.knn: [{ k: 5 }]\n", { "scalar" }, "a mapping is not a value")
fails("set: { data.root: 'a,b' }\n", { "comma" }, "a string with a comma is refused (--set would split it)")
p = file("grid: { loss.lambda: [0.5] }\n", false)
tap.raises(function() spec.read(p) end, { ":1:1:", "recipe" }, "the recipe is required")
p = file("recipe: nothere.lua\n", false)
tap.raises(function() spec.read(p) end, { ":1:1:", "cannot open", "nothere.lua" }, "a missing recipe is named")
p = file("", false)
tap.raises(function() spec.read(p) end, { "empty" }, "an empty file is refused")
tap.raises(function() spec.read(base .. "/none.yaml") end, { "none.yaml" }, "a missing file is named")

-- a grid of 10^6 trials is refused from its size, before any trial is listed
local big = { "grid:" }
for _, k in ipairs { "loss.lambda", "loss.slices", "optim.lr", "optim.weight_decay", "seed", "epochs" } do
  big[#big + 1] = "  " .. k .. ": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"
end
p = file(table.concat(big, "\n") .. "\n")
tap.raises(function() spec.read(p) end, { ":1:1:", "1000000 trials", "limit of 10000", "--max-trials" },
  "a grid of 10^6 trials is refused past the limit")
tap.check("--max-trials raises the limit", function() return spec.read(p, { max_trials = 1000000 }).count == 1000000 end)

-- --set on the command line: replaces a fixed value, adds one, refuses a swept key
local so = read("set: { epochs: 2 }\ngrid:\n  loss.lambda: [0.4, 0.6]\n")
spec.override(so, { "epochs=50", "data.subset=0", "loss.kind=swd" })
tap.eq(table.concat(spec.overrides(so, spec.trials(so)[1]), " "), "epochs=50 data.subset=0 loss.kind=swd loss.lambda=0.4",
  "--set replaces the file's value and adds new ones")
tap.raises(function() spec.override(so, { "loss.lambda=0.5" }) end, { "loss.lambda", "sweeps this key" },
  "--set of a swept key is refused")

os.exit(tap.done(), true)
