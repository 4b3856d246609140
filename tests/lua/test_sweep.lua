-- `visreg sweep` end to end on real, tiny trials (512 Fashion-MNIST images, one epoch, a few
-- seconds each): an uninterrupted sweep; one trial that fails and one killed mid-run, then the rerun
-- that runs only those two; Ctrl-C to the driver, then the resume; results equal to the
-- uninterrupted sweep's; --extend, a changed file, --force; successive halving; the Slurm array
-- script's tasks run with SLURM_ARRAY_TASK_ID set, then collected by `sweep status`.
local tap = require "tap"
local vr = require "visreg"
local util = vr.util
local q = util.shell_quote
local exe = VISREG_EXE

if not tap.can_train("sweeps") then os.exit(tap.done(), true) end
local base = tap.scratch("sweep")
local file = "recipes/sweeps/tiny.yaml"
local recipe = os.getenv("PWD") .. "/recipes/fmnist_visreg.lua"

local function sweep(args) return tap.sh(q(exe) .. " sweep " .. args) end
local function results(dir)
  local out = {}
  for line in io.lines(dir .. "/results.jsonl") do
    local l = util.json_decode(line)
    out[l.index] = l
  end
  return out
end
local function count(out, pattern)
  local n = 0
  for _ in out:gmatch(pattern) do n = n + 1 end
  return n
end
local function statuses(r)
  local c = {}
  for _, l in pairs(r) do c[l.status] = (c[l.status] or 0) + 1 end
  return c
end
-- the numbers that must not depend on interruptions, as text (bit for bit through JSON)
local function same_numbers(a, b)
  for _, k in ipairs { "linear_probe", "knn", "final_loss", "online_probe", "effective_rank", "steps" } do
    local x, y = a.summary and a.summary[k], b.summary and b.summary[k]
    if x == nil or util.json_encode(x) ~= util.json_encode(y) then
      return false, string.format("trial %d %s: %s vs %s", a.index, k, tostring(x), tostring(y))
    end
  end
  return true
end
local function all_same(ra, rb, what)
  for i = 0, 7 do
    local ok, why = same_numbers(ra[i], rb[i] or {})
    if not ok then return tap.ok(false, what, why) end
  end
  return tap.ok(true, what)
end
-- a shell loop that waits (at most 60 s) for COND, then runs ACTION
local function when(cond, action)
  return string.format("i=0; while [ $i -lt 3000 ]; do if %s; then %s; break; fi; sleep 0.02; i=$((i+1)); done;", cond, action)
end

---------------------------------------------------------------- an uninterrupted sweep
local A = base .. "/a"
local rc, out = sweep(q(file) .. " --out " .. q(A))
tap.eq(rc, 0, "a sweep whose trials all finish exits 0")
local ra = results(A)
tap.eq(statuses(ra).done, 8, "8 trials finished")
tap.eq(ra[3].folder, "0003-loss.lambda=0.5-model.width=16-seed=1", "trial folders are named by index and values")
tap.ok(util.file_exists(A .. "/" .. ra[3].folder .. "/summary.json") and util.file_exists(A .. "/sweep.json")
  and util.file_exists(A .. "/results.csv"), "each trial is a run folder; sweep.json and results.csv are written")
local summary3 = util.json_decode(util.read_file(A .. "/" .. ra[3].folder .. "/summary.json"))
tap.eq(ra[3].summary.linear_probe, summary3.linear_probe, "results.jsonl carries the trial's summary")
tap.ok(ra[3].values["loss.lambda"] == 0.5 and ra[3].values["model.width"] == 16 and ra[3].seed == 1 and ra[3].wall_seconds > 0,
  "results.jsonl carries the values, seed and wall time")
local run3 = util.json_decode(util.read_file(A .. "/" .. ra[3].folder .. "/run.json"))
tap.eq(table.concat(run3.overrides, " "), "epochs=1 batch=64 data.subset=512 data.test_subset=500 log.every=1 " ..
  "eval.probe_iters=50 loss.lambda=0.5 model.width=16 seed=1", "the trial trained with the fixed values, its own and its seed")
-- the table's means and stds, computed here from the trials' own summary.json
local groups = {}
for i = 0, 7 do
  local key = ra[i].values["loss.lambda"] .. "/" .. ra[i].values["model.width"]
  local s = util.json_decode(util.read_file(A .. "/" .. ra[i].folder .. "/summary.json"))
  groups[key] = groups[key] or {}
  table.insert(groups[key], s.linear_probe)
end
local table_ok, why = true, nil
for key, xs in pairs(groups) do
  local m = (xs[1] + xs[2]) / 2
  local sd = math.sqrt(((xs[1] - m) ^ 2 + (xs[2] - m) ^ 2) / 1)
  local lam, w = key:match("^(.-)/(.-)$")
  local row = string.format("%s%%s+%s%%s+%.4f %%+%%- %.4f%%s+2/2", lam:gsub("%.", "%%."), w, m, sd)
  if not out:find(row) then table_ok, why = false, "no row " .. row end
end
tap.ok(table_ok, "the table shows each configuration's mean +- std over its 2 seeds", why or out)
tap.ok(out:find("best: loss.lambda=", 1, true) and out:find("rerun: .* train .*fmnist_visreg.lua.*%-%-set 'loss.lambda="),
  "the best configuration and the command that reruns it", out)
tap.ok(out:find("8/8 done", 1, true), "the progress line", out)

rc, out = sweep(q(file) .. " --out " .. q(A))
tap.ok(rc == 0 and count(out, "\nstart ") == 0 and not out:find("^start "), "rerunning a finished sweep runs nothing", out)

---------------------------------------------------------------- a failure and a kill, then the rerun
local B = base .. "/b"
local broken = B .. "/" .. ra[3].folder
util.mkdir_p(broken)
util.write_file(broken .. "/checkpoint.safetensors", "not a checkpoint") -- its resume fails
local victim = B .. "/" .. ra[5].folder
rc, out = tap.sh("( " .. q(exe) .. " sweep " .. q(file) .. " --out " .. q(B) .. " & pid=$!; " ..
  when("p=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' " .. q(victim .. "/trial.json") .. " 2>/dev/null); [ -n \"$p\" ]",
    "kill -9 $p") .. " wait $pid )")
tap.eq(rc, 3, "a sweep with failed trials exits 3")
local rb = results(B)
tap.ok(statuses(rb).done == 6 and rb[3].status == "failed" and rb[5].status == "failed", "the others went on: 6 done, 2 failed",
  util.json_encode(statuses(rb)))
tap.ok(rb[3].exit_status == 1 and rb[3].log_tail:find("checkpoint", 1, true), "a failed trial keeps its exit status and log tail",
  util.json_encode(rb[3]))
tap.ok(rb[5].reason == "killed by signal 9", "a killed trial is recorded as such", tostring(rb[5].reason))
tap.ok(out:find("failed  " .. ra[3].folder, 1, true), "the table lists the failed trials", out)
os.remove(broken .. "/checkpoint.safetensors")
rc, out = sweep(q(file) .. " --out " .. q(B))
tap.ok(rc == 0 and count(out, "start  ") == 2 and out:find("start  " .. ra[3].folder, 1, true)
  and out:find("start  " .. ra[5].folder, 1, true), "the rerun runs only the two failed trials", out)
all_same(ra, results(B), "after the rerun every trial's numbers equal the uninterrupted sweep's")

---------------------------------------------------------------- Ctrl-C, then resume
local Cdir = base .. "/c"
-- the signal goes once a trial is in its training steps (some but not all of its 8 steps logged)
local cond = "for f in " .. q(Cdir) .. "/0*/metrics.jsonl; do n=$(grep -c step \"$f\" 2>/dev/null || echo 0);" ..
  " [ \"$n\" -ge 1 ] && [ \"$n\" -le 5 ] && exit 0; done; exit 1"
rc, out = tap.sh("( " .. q(exe) .. " sweep " .. q(file) .. " --out " .. q(Cdir) .. " & pid=$!; " ..
  when("(" .. cond .. ")", "kill -INT $pid") .. " wait $pid )")
local rc_ = results(Cdir)
local interrupted = 0
for _, l in pairs(rc_) do
  if l.status == "interrupted" and util.file_exists(Cdir .. "/" .. l.folder .. "/checkpoint.safetensors") then
    interrupted = interrupted + 1
  end
end
tap.ok(rc == 130 and interrupted >= 1 and out:find("rerun the same command to resume", 1, true),
  "Ctrl-C stops the sweep with 130, the running trials save checkpoints", out)
rc, out = sweep(q(file) .. " --out " .. q(Cdir))
local resumed = 0
for _, l in pairs(results(Cdir)) do
  if (util.read_file(Cdir .. "/" .. l.folder .. "/train.log") or ""):find("resumed from", 1, true) then resumed = resumed + 1 end
end
tap.ok(rc == 0 and resumed >= 1, "the rerun resumes the interrupted trials from their checkpoints", out)
all_same(ra, results(Cdir), "a sweep interrupted and resumed gives the uninterrupted sweep's numbers")

---------------------------------------------------------------- --extend, a changed file, --force
local D = base .. "/d"
local small = "recipe: " .. recipe .. "\nset: { epochs: 1, batch: 64, data.subset: 512, data.test_subset: 500, eval.probe_iters: 50 }\n" ..
  "grid: { model.width: [8] }\n"
local fd = base .. "/small.yaml"
util.write_file(fd, small .. "seeds: [0]\n")
rc, out = sweep(q(fd) .. " --out " .. q(D))
tap.eq(rc, 0, "a one-trial sweep")
util.write_file(fd, small .. "seeds: [0, 1]\n")
rc, out = sweep(q(fd) .. " --out " .. q(D))
tap.ok(rc == 2 and out:find("adds 1 trial", 1, true) and out:find("--extend", 1, true), "added values need --extend", out)
rc, out = sweep(q(fd) .. " --out " .. q(D) .. " --extend")
local rd = results(D)
tap.ok(rc == 0 and count(out, "start  ") == 1 and rd[1] and rd[1].status == "done" and rd[1].folder == "0001-model.width=8-seed=1",
  "--extend runs only the new trial", out)
util.write_file(fd, (small:gsub("epochs: 1", "epochs: 2")) .. "seeds: [0, 1]\n")
rc, out = sweep(q(fd) .. " --out " .. q(D))
tap.ok(rc == 2 and out:find("set: ", 1, true) and out:find('"epochs",1', 1, true) and out:find("--force", 1, true),
  "any other change is refused, saying what changed", out)
rc, out = sweep(q(fd) .. " --out " .. q(D) .. " --force --slurm --print")
local aside = out:match("moved to (%S+)")
tap.ok(rc == 0 and aside and util.file_exists(aside .. "/0000-model.width=8-seed=0/summary.json")
  and not util.file_exists(D .. "/0000-model.width=8-seed=0/summary.json"), "--force moves the old trials aside", out)

---------------------------------------------------------------- successive halving
local E = base .. "/e"
local fe = base .. "/halving.yaml"
util.write_file(fe, "recipe: " .. recipe .. "\nset: { epochs: 2, batch: 64, data.subset: 512, data.test_subset: 500, " ..
  "eval.probe_iters: 50, model.width: 8 }\ngrid: { optim.lr: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3] }\n" ..
  "early_stop: { metric: online_probe, rungs: [1], keep: 0.5 }\nparallel: 2\n")
rc, out = sweep(q(fe) .. " --out " .. q(E))
local re = results(E)
local st = statuses(re)
tap.ok(rc == 0 and st.done == 2 and st.stopped == 2, "successive halving: half the trials stop at the rung, the others finish", out)
local worst_kept, best_stopped = math.huge, -math.huge
for _, l in pairs(re) do
  local ep = {}
  for line in io.lines(E .. "/" .. l.folder .. "/metrics.jsonl") do
    local j = util.json_decode(line)
    if j.type == "epoch" and j.epoch == 0 then ep = j end
  end
  local v = ep.online_probe
  if l.status == "done" then worst_kept = math.min(worst_kept, v) else best_stopped = math.max(best_stopped, v) end
  if l.status == "stopped" and not (l.stopped_at == 1 and l.reason:find("stopped at epoch 1", 1, true)) then
    tap.ok(false, "a stopped trial says where and why", util.json_encode(l))
  end
end
tap.ok(worst_kept >= best_stopped, "the trials kept had the better online probe at the rung",
  string.format("%g < %g", worst_kept, best_stopped))
tap.ok(not out:find("failed", 1, true), "stopped trials are never failures", out)

---------------------------------------------------------------- Slurm's array script, run by hand
local F = base .. "/f"
local ff = base .. "/four.yaml"
util.write_file(ff, (small:gsub("model.width: %[8%]", "model.width: [8, 16], loss.lambda: [0.5, 0.8]")) ..
  "slurm: { partition: debug, time: '0:10:00', cpus: 1 }\nparallel: 2\n")
rc, out = sweep(q(ff) .. " --out " .. q(F) .. " --slurm --print")
local script = util.read_file(F .. "/sweep.sbatch") or ""
tap.ok(rc == 0 and script:find("#SBATCH --array=0-3%2", 1, true) and script:find("#SBATCH --partition=debug", 1, true)
  and script:find("#SBATCH --time=0:10:00", 1, true) and script:find("#SBATCH --cpus-per-task=1", 1, true)
  and script:find("--trial \"$SLURM_ARRAY_TASK_ID\"", 1, true) and script:find("#SBATCH --requeue", 1, true),
  "--slurm --print writes a job array of the 4 trials", script)
rc, out = tap.sh("for i in 0 1 2 3; do SLURM_ARRAY_TASK_ID=$i sh " .. q(F .. "/sweep.sbatch") .. " || echo task $i failed; done")
tap.ok(rc == 0 and not out:find("failed", 1, true), "each array task runs its trial", out)
rc, out = sweep("status " .. q(F))
tap.ok(rc == 0 and out:find("4/4 done", 1, true) and statuses(results(F)).done == 4, "sweep status collects the tasks' results", out)
rc, out = sweep(q(ff) .. " --out " .. q(F) .. " --slurm --print")
tap.ok(rc == 0 and out:find("nothing to submit", 1, true), "a finished sweep submits nothing", out)

os.execute("rm -rf " .. q(base))
os.exit(tap.done(), true)
