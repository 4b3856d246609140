-- visreg.sweep.runner: runs trials as `visreg train` processes, `parallel` at a time.
--
-- Each trial is its own process in its own run folder: a crash or a divergence fails that trial
-- alone. A trial with a checkpoint is resumed from it (bit for bit, as `train --resume`); a failed
-- one is tried again up to `retries` times in one invocation. Ctrl-C (or SIGTERM) is forwarded to
-- every running trial, which saves a checkpoint and stops; the sweep can then be rerun to resume.
--
-- Early stopping is synchronous successive halving: every live trial trains to the first rung
-- (`train --stop-at-epoch`, a checkpoint and a pause), the trials are ranked by the rung's metric
-- from their metrics.jsonl, the worse fraction is marked stopped, and the rest go on to the next
-- rung, then to the end. The decisions depend only on the trials' numbers, never on timing.
local core = require "visreg.core"
local ffi = require "ffi"
local util = require "visreg.util"
local spec = require "visreg.sweep.spec"
local store = require "visreg.sweep.store"
local C = core.C

local M = {}

local SIGINT = 2

local function hostname()
  local s = util.read_file("/proc/sys/kernel/hostname") or os.getenv("HOSTNAME") or "localhost"
  return (s:gsub("%s+$", ""))
end
M.hostname = hostname

local function fmt_time(s) return require("visreg.trainer").fmt_time(s) end

-- starts one trial; returns the running job
local function launch(ctx, job, slot)
  local s, t, dir = ctx.s, job.trial, ctx.dir
  local tdir = store.trial_dir(dir, t)
  util.mkdir_p(tdir)
  -- ranks > 1: the trial is a data-parallel job under mpirun (inside a Slurm allocation, mpirun
  -- places the ranks on its tasks)
  local argv = (s.ranks or 1) > 1 and { "mpirun", "-np", tostring(s.ranks), ctx.exe, "train", s.recipe }
    or { ctx.exe, "train", s.recipe }
  for _, o in ipairs(spec.overrides(s, t)) do argv[#argv + 1] = "--set"; argv[#argv + 1] = o end
  argv[#argv + 1] = "--out"; argv[#argv + 1] = tdir
  -- a trial with a checkpoint continues from it; one without starts over (--force: what an earlier
  -- attempt left, e.g. after a crash before its first checkpoint, moves to replaced-DATE/; the
  -- trial's own trial.json and train.log stay)
  if store.has_checkpoint(dir, t) then
    argv[#argv + 1] = "--resume"; argv[#argv + 1] = tdir
  else
    argv[#argv + 1] = "--force"
  end
  if job.stop_at then argv[#argv + 1] = "--stop-at-epoch"; argv[#argv + 1] = tostring(job.stop_at) end
  -- each trial gets its share of the cores, for its kernels and for OpenBLAS's own threads
  local env = { "OMP_NUM_THREADS=" .. ctx.threads, "OPENBLAS_NUM_THREADS=" .. ctx.threads }
  if slot.device then env[#env + 1] = "CUDA_VISIBLE_DEVICES=" .. slot.device end
  local cargv = ffi.new("const char*[?]", #argv + 1)
  for i, a in ipairs(argv) do cargv[i - 1] = a end
  local cenv = ffi.new("const char*[?]", #env + 1)
  for i, e in ipairs(env) do cenv[i - 1] = e end
  local pid = ffi.new("int64_t[1]")
  local log = tdir .. "/train.log"
  core.check(C.vr_proc_spawn(cargv, cenv, log, pid))
  job.pid, job.started, job.slot, job.log = tonumber(pid[0]), core.now(), slot, log
  job.state = store.trial_state(dir, t)
  job.state.status, job.state.pid, job.state.host = "running", job.pid, ctx.host
  job.state.started = os.date("!%Y-%m-%dT%H:%M:%SZ")
  job.state.device = slot.device
  store.save_trial_state(dir, t, job.state)
  job.attempt = (job.attempt or 0) + 1
  return job
end

-- what a finished process means for its trial
local function outcome(ctx, job, status)
  local st, dir, t = job.state, ctx.dir, job.trial
  st.pid, st.host = nil, nil
  st.exit_status = status
  st.wall_seconds = (st.wall_seconds or 0) + (core.now() - job.started)
  st.attempts = (st.attempts or 0) + 1
  local summary = status == 0 and store.summary(dir, t)
  if summary then
    if summary.epochs and summary.epochs > 0 and summary.final_loss == nil then
      st.status, st.reason = "failed", "diverged: the final loss is not a finite number"
    else
      st.status, st.reason = "done", nil
    end
  elseif status == 0 and job.stop_at then
    st.status, st.reason = "paused", nil
  elseif status == 130 and ctx.stopping then
    st.status, st.reason = "interrupted", nil
  else
    st.status = "failed"
    st.reason = status == 0 and "the run ended without a summary.json" or
      (status > 128 and string.format("killed by signal %d", status - 128) or string.format("exit status %d", status))
  end
  st.log_tail = st.status == "failed" and store.tail(job.log, 20) or nil
  st.finished = os.date("!%Y-%m-%dT%H:%M:%SZ")
  store.save_trial_state(dir, t, st)
  return st.status
end

local function say(ctx, fmt, ...)
  if not ctx.quiet then
    io.stdout:write(string.format(fmt, ...), "\n")
    io.stdout:flush()
  end
end

-- runs jobs ({trial, stop_at}) in slots; returns false when interrupted
local function run_pool(ctx, jobs)
  local running = {}
  local ok, res = pcall(M.pool_loop, ctx, jobs, running)
  if not ok then
    -- the driver failed: its trials stop too (each saves a checkpoint), none is left behind
    local done, status = ffi.new("int[1]"), ffi.new("int[1]")
    for j in pairs(running) do C.vr_proc_signal(j.pid, SIGINT) end
    for j in pairs(running) do C.vr_proc_wait(j.pid, 1, done, status) end
    error(res, 0)
  end
  return res
end

function M.pool_loop(ctx, jobs, running)
  local queue = {}
  for i, j in ipairs(jobs) do queue[i] = j end
  local free = {}
  for i = #ctx.slots, 1, -1 do free[#free + 1] = ctx.slots[i] end
  while #queue > 0 or next(running) do
    if not ctx.stopping and C.vr_host_interrupted() ~= 0 then
      ctx.stopping = true
      say(ctx, "interrupted: stopping %d running trial%s (each saves a checkpoint)", ctx.count(running),
        ctx.count(running) == 1 and "" or "s")
      for j in pairs(running) do C.vr_proc_signal(j.pid, SIGINT) end
      queue = {}
    end
    while not ctx.stopping and #queue > 0 and #free > 0 do
      local job = table.remove(queue, 1)
      local slot = table.remove(free)
      launch(ctx, job, slot)
      running[job] = true
      ctx.started = ctx.started + 1
      say(ctx, "start  %s%s%s", job.trial.folder, job.stop_at and (" (to epoch " .. job.stop_at .. ")") or "",
        job.attempt > 1 and string.format(" (attempt %d)", job.attempt) or "")
    end
    local done = ffi.new("int[1]")
    local status = ffi.new("int[1]")
    for job in pairs(running) do
      core.check(C.vr_proc_wait(job.pid, 0, done, status))
      if done[0] ~= 0 then
        running[job] = nil
        free[#free + 1] = job.slot
        local res = outcome(ctx, job, status[0])
        local st = job.state
        if res == "failed" and job.attempt <= ctx.s.retries and not ctx.stopping then
          say(ctx, "retry  %s: %s", job.trial.folder, st.reason)
          queue[#queue + 1] = job
        else
          ctx.on_finished(job.trial, st)
        end
      end
    end
    if next(running) or #queue > 0 then C.vr_sleep(0.1) end
  end
  return not ctx.stopping
end

-- the metric a trial logged at the end of epoch e (nil when it did not reach it)
local function rung_value(ctx, t, e, metric)
  local ep = store.epochs(ctx.dir, t)[e]
  local v = ep and ep[metric]
  return type(v) == "number" and v == v and v or nil
end

local function epochs_done(ctx, t)
  local n = 0
  for e in pairs(store.epochs(ctx.dir, t)) do n = math.max(n, e) end
  return n
end

-- ranks the trials that reached rung e; marks the worse ones stopped
local function halve(ctx, live, e)
  local es = ctx.s.early_stop
  local ranked = {}
  for _, t in ipairs(live) do
    ranked[#ranked + 1] = { t = t, v = rung_value(ctx, t, e, es.metric) }
  end
  local sign = es.mode == "min" and 1 or -1
  table.sort(ranked, function(a, b)
    if (a.v == nil) ~= (b.v == nil) then return a.v ~= nil end -- a trial without the metric ranks last
    if a.v ~= nil and a.v ~= b.v then return sign * a.v < sign * b.v end
    return a.t.index < b.t.index
  end)
  local keep = math.max(1, math.ceil(es.keep * #ranked - 1e-9))
  local kept = {}
  for i, r in ipairs(ranked) do
    if i <= keep then
      kept[#kept + 1] = r.t
    else
      local st = store.trial_state(ctx.dir, r.t)
      st.status, st.stopped_at, st.rung_metric = "stopped", e, r.v
      st.reason = string.format("stopped at epoch %d: %s %s, below the best %d of %d", e, es.metric,
        r.v and string.format("%.4g", r.v) or "missing", keep, #ranked)
      store.save_trial_state(ctx.dir, r.t, st)
      say(ctx, "stop   %s: %s", r.t.folder, st.reason)
    end
  end
  table.sort(kept, function(a, b) return a.index < b.index end)
  return kept
end

-- run(ctx): ctx = { s, trials (those to run), dir, exe, parallel, quiet, on_finished(trial, state) }.
-- Returns "done" or "interrupted".
function M.run(ctx)
  ctx.started = 0
  ctx.host = ctx.host or hostname()
  ctx.on_finished = ctx.on_finished or function() end
  ctx.count = function(t) local n = 0; for _ in pairs(t) do n = n + 1 end; return n end
  local s = ctx.s
  local parallel = ctx.parallel or s.parallel
  if s.devices then parallel = math.min(parallel, #s.devices * s.per_device) end
  ctx.slots = {}
  for i = 1, parallel do ctx.slots[i] = { device = s.devices and s.devices[(i - 1) % #s.devices + 1] or nil } end
  ctx.threads = math.max(1, math.floor(C.vr_cpu_count() / parallel))

  -- trials still to run: not finished and not stopped
  local live = {}
  for _, t in ipairs(ctx.trials) do
    local st = store.trial_state(ctx.dir, t)
    if st.status ~= "done" and st.status ~= "stopped" then live[#live + 1] = t end
  end
  local rungs = s.early_stop and s.early_stop.rungs or {}
  for _, e in ipairs(rungs) do
    local jobs = {}
    for _, t in ipairs(live) do
      if epochs_done(ctx, t) < e then jobs[#jobs + 1] = { trial = t, stop_at = e } end
    end
    if #jobs > 0 then say(ctx, "rung   epoch %d: %d trial%s to train", e, #jobs, #jobs == 1 and "" or "s") end
    if not run_pool(ctx, jobs) then return "interrupted" end
    local reached = {}
    for _, t in ipairs(live) do
      local st = store.trial_state(ctx.dir, t).status
      -- a failed trial is not ranked, nor one that finished before the rung (fewer epochs)
      if st ~= "done" and st ~= "failed" and epochs_done(ctx, t) >= e then reached[#reached + 1] = t end
    end
    live = halve(ctx, reached, e)
  end
  local jobs = {}
  for _, t in ipairs(live) do
    if store.trial_state(ctx.dir, t).status ~= "done" then jobs[#jobs + 1] = { trial = t } end
  end
  if not run_pool(ctx, jobs) then return "interrupted" end
  return "done"
end

M.fmt_time = fmt_time
return M
