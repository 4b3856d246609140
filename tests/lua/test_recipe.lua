-- recipes: loading, errors with the recipe's file:line, --set overrides, unknown keys, schedules
local tap = require "tap"
local vr = require "visreg"
local recipe = require "visreg.recipe"
local schedule = vr.schedule
local util = vr.util

local dir = os.getenv("TMPDIR") or "/tmp"
local written = {} -- removed at the end
local function write(name, text)
  local path = string.format("%s/visreg_test_%d_%s", dir, math.random(1, 1e9), name)
  written[#written + 1] = path
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local base = [[
local vr = require "visreg"
local aug = vr.augment
return vr.recipe {
  seed = 1, epochs = 3, batch = 32,
  data = vr.data.fashion_mnist { subset = 512 },
  views = { global = { n = 2, pipeline = { aug.hflip { p = 0.5 }, aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = function() return vr.nn.smallcnn { width = 8 }, vr.nn.mlp { 32, 64, 16 } end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 64 },
  optim = vr.optim.adamw { lr = 1e-3 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 1 } },
}
]]

-- a good recipe loads with its defaults filled in
local good = write("good.lua", base)
local r = recipe.load(good)
tap.eq(r.batch, 32, "recipe values are kept")
tap.eq(r.loss.weights.shape, 1, "loss defaults are filled in")
tap.eq(r.optim.betas[2], 0.999, "optimizer defaults are filled in")
tap.eq(r.eval.knn.k, 20, "eval defaults are filled in")
tap.ok(r.name:match("good$"), "the name defaults to the file name", r.name)

-- --set overrides with number, boolean, string and list parsing
r = recipe.load(good, { "loss.lambda=0.7", "eval.linear_probe=false", "device=cpu", "loss.weights.shape=2",
  "data.subset=128", "views.global.pipeline.1.p=0.25", "optim.betas={0.8,0.99}" })
tap.eq(r.loss.lambda, 0.7, "--set parses numbers")
tap.eq(r.eval.linear_probe, false, "--set parses booleans")
tap.eq(r.device, "cpu", "--set keeps strings")
tap.eq(r.loss.weights.shape, 2, "--set reaches nested keys")
tap.eq(r.views.global.pipeline[1].p, 0.25, "--set reaches list entries by index")
tap.ok(r.optim.betas[1] == 0.8 and r.optim.betas[2] == 0.99, "--set parses lists", util.json_encode(r.optim.betas))

tap.eq(recipe.load(good, { "eval.knn=false" }).eval.knn, false, "--set switches a table of settings off with false")
tap.raises(function() recipe.load(good, { "eval.knn=3" }) end, { "eval.knn", "table of settings" },
  "--set refuses a number for a table of settings")

-- an unknown key is refused, naming it and the nearest valid keys
tap.raises(function() recipe.load(good, { "loss.lamda=0.7" }) end, { "unknown key 'loss.lamda'", "loss.lambda" },
  "--set refuses an unknown key and suggests the nearest")
tap.raises(function() recipe.load(good, { "epoch=4" }) end, { "unknown key 'epoch'", "epochs" },
  "--set suggests epochs for epoch")
tap.raises(function() recipe.load(good, { "batch=big" }) end, { "batch", "expected a number" },
  "--set refuses a string for a number")
tap.raises(function() recipe.load(good, { "batch" }) end, { "key.path=value" }, "--set needs key=value")
tap.raises(function() recipe.load(good, { "batch=0" }) end, { "batch", "positive" }, "checks run again after --set")

-- errors carry the recipe's file and line
local bad_syntax = write("syntax.lua", "local vr = require 'visreg'\nreturn vr.recipe {\n  epochs = = 3,\n}\n")
tap.raises(function() recipe.load(bad_syntax) end, { "syntax.lua:3:" }, "a syntax error names the recipe's file:line")
local bad_key = write("key.lua", base:gsub("seed = 1,", "seed = 1,\n  epoks = 3,"))
tap.raises(function() recipe.load(bad_key) end, { "key.lua:5:", "unknown key 'epoks'", "epochs" },
  "an unknown recipe key names the file:line and the nearest keys")
local bad_loss = write("loss.lua", base:gsub("lambda = 0.6,", "lamda = 0.6,"))
tap.raises(function() recipe.load(bad_loss) end, { "loss.lua:8:", "vr.loss.visreg", "unknown key 'lamda'", "lambda" },
  "an unknown option of a loss names the file:line")
local bad_runtime = write("runtime.lua", "local vr = require 'visreg'\nlocal x = nil\nreturn x.y\n")
tap.raises(function() recipe.load(bad_runtime) end, { "runtime.lua:3:" }, "a runtime error names the file:line")
local bad_sched = write("sched.lua", base:gsub('lr = vr.schedule', '["loss.lamda"] = vr.schedule'))
tap.raises(function() recipe.load(bad_sched) end, { "sched.lua:", "loss.lamda", "loss.lambda" },
  "a schedule on an unknown key is refused with the nearest keys")
tap.raises(function() recipe.load(dir .. "/no_such_recipe.lua") end, { "cannot open recipe" }, "a missing recipe is reported")
local bad_tensor = write("tensor.lua", "local vr = require 'visreg'\nlocal a = vr.zeros(2, 3)\nlocal b = a:view(4, 4)\nreturn b\n")
tap.raises(function() recipe.load(bad_tensor) end, { "tensor.lua:3:", "vr_view", "view.c:" },
  "a failing C call names the recipe's line and carries the C message")

-- the resolved recipe serialises to JSON and back
local j = util.json_decode(recipe.to_json(recipe.load(good)))
tap.eq(j.loss.lambda, 0.6, "the resolved recipe round-trips through JSON")
tap.ok(tostring(j.model):match("^<function .*good.lua:%d+>$"), "functions serialise as their file:line", tostring(j.model))

-- schedules
local ctx = { steps_per_epoch = 10, total_steps = 100, epochs = 10 }
local wc = schedule.warmup_cosine { warmup_epochs = 2, final_ratio = 1e-3 }
tap.near(schedule.value(wc, 1e-3, 0, 0, ctx), 1e-3 * 1 / 20, 1e-12, "warmup_cosine: first step is 1/warmup of the base")
tap.near(schedule.value(wc, 1e-3, 1, 19, ctx), 1e-3, 1e-12, "warmup_cosine: the end of warmup reaches the base")
tap.near(schedule.value(wc, 1e-3, 6, 60, ctx), 1e-3 * (1e-3 + 0.5 * (1 - 1e-3) * (1 + math.cos(math.pi * 40 / 80))), 1e-12,
  "warmup_cosine: cosine decay in between")
tap.near(schedule.value(wc, 1e-3, 9, 100, ctx), 1e-3 * 1e-3, 1e-12, "warmup_cosine: final ratio at the end")
local st = schedule.step { milestones = { 3, 6 }, gamma = 0.1 }
tap.near(schedule.value(st, 2, 2, 25, ctx), 2, 1e-12, "step: before the first milestone")
tap.near(schedule.value(st, 2, 3, 30, ctx), 0.2, 1e-12, "step: after the first milestone")
tap.near(schedule.value(st, 2, 7, 70, ctx), 0.02, 1e-12, "step: after the second milestone")
tap.near(schedule.value(schedule.constant {}, 0.5, 4, 40, ctx), 0.5, 1e-12, "constant keeps the base")
tap.near(schedule.value(function(e, s, c) return e + s / c.total_steps end, 0, 2, 50, ctx), 2.5, 1e-12,
  "a Lua function of (epoch, step) gives the value")
tap.near(schedule.value(schedule.linear { from = 1, to = 0 }, 4, 5, 50, ctx), 2, 1e-12, "linear interpolates")
tap.raises(function() schedule.value(function() return "x" end, 0, 0, 0, ctx) end, { "expected a number" },
  "a schedule function must give a number")
tap.raises(function() vr.schedule.warmup_cosine { warmup = 1 } end, { "unknown key 'warmup'", "warmup_epochs" },
  "schedule options are checked")

-- every shipped recipe loads (run from the repository root)
local lsf = io.popen("ls recipes/*.lua 2>/dev/null")
local n = 0
for f in lsf:lines() do
  n = n + 1
  local ok, e = pcall(recipe.load, f)
  tap.ok(ok, "recipe " .. f .. " loads", e)
end
lsf:close()
tap.ok(n >= 6, "the shipped recipes are found", tostring(n))

-- util
tap.eq(util.edit_distance("lamda", "lambda"), 1, "edit distance")
tap.eq(util.nearest("lr", { "optim.lr", "lr", "seed" }, 1)[1], "lr", "nearest key")
local js = util.json_encode { a = { 1, 2, 3 }, b = "x\n\"y\"", c = true, d = 1.5 }
local back = util.json_decode(js)
tap.ok(back.a[3] == 3 and back.b == "x\n\"y\"" and back.c == true and back.d == 1.5, "JSON round trip", js)

for _, path in ipairs(written) do os.remove(path) end
os.exit(tap.done(), true)
