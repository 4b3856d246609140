-- data-parallel training under `mpirun --oversubscribe -np 2` on this machine's CPU: one step of
-- 2 ranks x B/2 equals one process x B (tests/lua/dist/step_parity.lua: every regularizer, both
-- slice modes, f64); a 2-rank run of a tiny recipe equals the 1-rank run; a 2-rank checkpoint
-- resumes on 1 rank and on 2; a rank that fails ends the job with a message. Skipped (and says so)
-- without Open MPI's mpirun.
local tap = require "tap"
local vr = require "visreg"
local util = vr.util

local bin = os.getenv("VISREG_BIN") or "bin/visreg"
local rc0 = tap.sh("command -v mpirun")
if rc0 ~= 0 then
  tap.skip("data-parallel training", "mpirun is not installed (Debian's openmpi-bin; make test-deps as root)")
  os.exit(tap.done(), true)
end
-- mpirun as root (the test machine's user) is allowed through Open MPI's two variables. Under
-- `make asan` the ranks keep AddressSanitizer's memory checks but not its leak report: Open MPI
-- never frees its own tables (allocated in plugins it unloads at exit, so they cannot be
-- suppressed by name); the leak checks of our code run in every other suite.
local MPIRUN = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0 " ..
  "timeout 240 mpirun --oversubscribe -np %d "
local MPI = MPIRUN .. bin .. " "

-- the C interface on 2 ranks (make test runs it alone too)
if util.file_exists("build/tests/test_dist") then
  local rc, out = tap.sh("CK_FORK=no " .. string.format(MPIRUN, 2) .. "build/tests/test_dist")
  tap.ok(rc == 0 and select(2, out:gsub("100%%: Checks", "")) == 2, "the C collectives on 2 ranks (tests/test_dist.c)", out)
end

-- one step: every regularizer x both slice modes, every gradient and parameter
local rc, out = tap.sh(string.format(MPI, 2) .. "run tests/lua/dist/step_parity.lua")
local oks, bad = 0, {}
for line in out:gmatch("[^\n]+") do
  if line:match("^ok ") then oks = oks + 1 elseif line:match("^not ok") then bad[#bad + 1] = line end
end
tap.ok(rc == 0 and oks == 82 and #bad == 0,
  "one step on 2 ranks x B/2 = one process x B in f64 (loss, every gradient, every parameter; 6 regularizers x 2 slice modes; synchronized batch norm)",
  #bad > 0 and table.concat(bad, "\n") or out:sub(-2000))

if not tap.can_train("data-parallel training runs") then os.exit(tap.done(), true) end

local base = tap.scratch("dist")
local src = [[
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment
return vr.recipe {
  seed = 5, epochs = 2, batch = 32, device = "cpu", threads = 1,
  data = vr.data.fashion_mnist { subset = 128, test_subset = 64 },
  views = { global = { n = 2, pipeline = { aug.random_resized_crop { scale = { 0.5, 1 } }, aug.hflip { p = 0.5 },
    aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = function()
    local enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU())
    enc.out_dim = 32
    return enc, nn.mlp { 32, 32, 16, norm = false }
  end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 16 },
  optim = vr.optim.sgd { lr = 0.05, momentum = 0.9, weight_decay = 1e-4 },
  eval = { linear_probe = false, knn = false },
  log = { every = 1, progress = "plain" },
  loader = { workers = 1 },
}
]]
local path = base .. "/tiny.lua"
util.write_file(path, src)

local function train(n, args)
  return tap.sh(string.format(MPI, n) .. "train " .. path .. " --quiet " .. args)
end
local function losses(dir)
  local out = {}
  for line in io.lines(dir .. "/metrics.jsonl") do
    local j = util.json_decode(line)
    if j.type == "step" then out[j.step] = j.loss end
  end
  return out
end
local function online_probe(dir) -- the first epoch line's accuracy
  for line in io.lines(dir .. "/metrics.jsonl") do
    local j = util.json_decode(line)
    if j.type == "epoch" then return j.online_probe end
  end
end
local function params(dir)
  local t = vr.checkpoint.load(dir .. "/checkpoint.safetensors")
  local out = {}
  for k, v in pairs(t) do if k:match("^encoder%.") or k:match("^projector%.") or k:match("^probe%.") then out[k] = v:to_list() end end
  return out
end
-- the largest difference between two runs' losses and parameters (relative to max(1, |value|))
local function diff(a, b)
  local m, la, lb = 0, losses(a), losses(b)
  for s, v in pairs(lb) do m = math.max(m, math.abs((la[s] or math.huge) - v) / math.max(1, math.abs(v))) end
  local pa, pb = params(a), params(b)
  for k, v in pairs(pb) do
    local w = pa[k] or {}
    for i = 1, #v do m = math.max(m, math.abs((w[i] or math.huge) - v[i]) / math.max(1, math.abs(v[i]))) end
  end
  return m
end
-- f32, summed in another order, over a few steps of SGD: a rounding difference grows along the
-- steps (the sorts' order and the ReLUs' kinks), so the runs are compared over 4 steps (AdamW's
-- first steps, near sign(g), turn one into a step of lr on a gradient near 0: the f64 test above
-- checks AdamW exactly)
local TOL = 1e-5
local function ran(rc) return rc == 0 or rc == 130 end -- 130: stopped at --stop-at-step, checkpoint saved

local r1, o1 = train(1, "--out " .. base .. "/one --stop-at-step 4")
local r2, o2 = train(2, "--out " .. base .. "/two --stop-at-step 4")
tap.ok(ran(r1) and ran(r2), "a tiny recipe trains on 1 and on 2 ranks", o1 .. o2)
if ran(r1) and ran(r2) then
  local d = diff(base .. "/two", base .. "/one")
  tap.ok(d <= TOL, string.format("2 ranks equal 1 rank: every step's loss and every parameter after 4 steps (%.2g)", d),
    string.format("max relative difference %.3g", d))
  local logged = 0
  for _ in io.lines(base .. "/two/metrics.jsonl") do logged = logged + 1 end
  tap.eq(logged, 5, "rank 0 alone writes the metrics (4 steps + 1 epoch)")
  tap.eq(online_probe(base .. "/two"), online_probe(base .. "/one"), "the online probe's accuracy counts every rank's samples")
end

-- a 2-rank checkpoint at step 2, resumed on 1 rank and on 2
local rs, os_ = train(2, "--out " .. base .. "/half --stop-at-step 2")
tap.ok(ran(rs) and util.file_exists(base .. "/half/checkpoint.safetensors"), "a 2-rank run stops at step 2 with a checkpoint", os_)
for _, n in ipairs { 1, 2 } do
  local dir = base .. "/resume" .. n
  util.mkdir_p(dir)
  tap.sh(string.format("cp %s/half/* %s/", base, dir))
  local rr, orr = train(n, "--resume " .. dir .. " --stop-at-step 4")
  tap.eq(ran(rr) and online_probe(dir), online_probe(base .. "/one"),
    string.format("resumed mid-epoch on %d rank%s, the epoch's online probe counts the whole epoch once", n, n == 1 and "" or "s"))
  tap.ok(ran(rr) and ran(r1) and diff(dir, base .. "/one") <= TOL,
    string.format("the 2-rank checkpoint resumes on %d rank%s and ends as the uninterrupted run", n, n == 1 and "" or "s"),
    orr .. (ran(rr) and ran(r1) and string.format(" (max relative difference %.3g)", diff(dir, base .. "/one")) or ""))
end

-- a sweep whose trials ask for 2 ranks
util.write_file(base .. "/two.yaml", "recipe: tiny.lua\nname: two\nset: { epochs: 1 }\ngrid:\n  loss.lambda: [0.5]\n" ..
  "metric: online_probe\nranks: 2\n")
local rw, ow = tap.sh("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0 timeout 240 " .. bin .. " sweep " .. base ..
  "/two.yaml --out " .. base .. "/sweep")
local tlog = util.read_file(base .. "/sweep/0000-loss.lambda=0.5/train.log") or ""
tap.ok(rw == 0 and ow:find("1/1 done", 1, true) and tlog:find("data-parallel: 2 ranks", 1, true),
  "a sweep's trial runs on the 2 ranks it asks for (ranks: 2)", ow .. tlog)

-- a rank that fails ends the job with a message, not a hang
local fail_src = src:gsub("loader = { workers = 1 },", "loader = { workers = 1 }, dist = { timeout = 3 },"):gsub("loss = vr.loss.visreg", [[schedule = { ["loss.lambda"] = function(epoch, step)
    if require("visreg.dist").rank() == 1 and step == 2 then FAIL end
    return 0.6
  end },
  loss = vr.loss.visreg]])
for ci, case in ipairs {
  { "error('rank 1 is out of data')", "an error on rank 1", "rank 1 of 2 stopped with the error above: ending the job" },
  { "os.exit(3)", "rank 1 exiting", "exited" },
  { "os.execute('sleep 30 >/dev/null 2>&1')", "rank 1 hanging (dist.timeout = 3 s)", "rank 0 of 2 has waited 3 s for the other ranks" },
} do
  local p = base .. "/fail.lua"
  util.write_file(p, (fail_src:gsub("FAIL", case[1])))
  local t0 = vr.now()
  local rf, of = tap.sh(string.format(MPI, 2) .. "train " .. p .. " --quiet --out " .. base .. "/fail" .. ci)
  local took = vr.now() - t0
  tap.ok(rf ~= 0 and rf ~= 124 and of:find(case[3], 1, true) ~= nil,
    case[2] .. " ends the job with a message (in " .. string.format("%.1f s", took) .. ")", "rc " .. tostring(rf) .. ": " .. of)
end

os.exit(tap.done(), true)
