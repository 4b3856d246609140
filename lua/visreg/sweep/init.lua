-- visreg.sweep: `visreg sweep FILE.yaml` and `visreg sweep status DIR` (tools/cmd_sweep.c).
-- The file is read and every trial checked against the recipe before anything starts; the sweep
-- folder then holds one run folder per trial, sweep.json and the results (visreg.sweep.store).
local util = require "visreg.util"
local cli = require "visreg.cli"
local spec = require "visreg.sweep.spec"
local store = require "visreg.sweep.store"
local runner = require "visreg.sweep.runner"
local results = require "visreg.sweep.results"
local slurm = require "visreg.sweep.slurm"

local M = {}

-- exit statuses
M.OK, M.FAILED_TRIALS, M.USAGE, M.INTERRUPTED = 0, 3, 2, 130

local USAGE = [=[usage: visreg sweep FILE.yaml [--out DIR] [--dry-run] [--parallel N] [--extend] [--force]
                    [--max-trials N] [--trial I] [--slurm [--print] [--partition P] [--time T]
                    [--gpus N] [--cpus N]] [--set key=value ...]
       visreg sweep status DIR
  --out DIR        the sweep folder (default runs/sweeps/NAME)
  --dry-run        lists the trials and checks each one's values against the recipe; runs nothing
  --parallel N     trials at once (default: the file's parallel, else 1)
  --extend         runs the trials that values added to the file make
  --force          starts over after the file changed (the old trials are moved aside)
  --max-trials N   the most trials accepted (default 10000)
  --set key=value  replaces (or adds) a fixed value of the file's set for every trial
  --trial I        runs trial I only (what each Slurm array task does)
  --slurm          writes DIR/sweep.sbatch, a job array of the unfinished trials, and submits it
                   (--print: only writes it); --partition, --time, --gpus, --cpus per task
  status DIR       progress, ETA and the results table; rebuilds results.jsonl and results.csv
exit status: 0 every trial finished (or was stopped early), 3 some trials failed,
             130 interrupted (rerun the same command to resume), 2 a bad file or argument, 1 other errors]=]

local function fail(msg)
  io.stderr:write("visreg sweep: ", msg, "\n")
  return M.USAGE
end

local function exe() return VISREG_EXE or "bin/visreg" end

local function say(quiet, ...) if not quiet then print(string.format(...)) end end

-- the sweep's values shown as one line
local function values_text(t)
  local parts = {}
  for _, kv in ipairs(t.values) do parts[#parts + 1] = kv[1] .. "=" .. spec.set_text(kv[2]) end
  if t.seed then parts[#parts + 1] = "seed=" .. t.seed end
  return table.concat(parts, " ")
end

local function dry_run(s, trials, dir)
  local blocks = {}
  for _, b in ipairs(s.blocks) do blocks[#blocks + 1] = string.format("%s %d", b.name, #b.positions) end
  if s.seeds then blocks[#blocks + 1] = "seeds " .. #s.seeds end
  print(string.format("sweep %s: %s over %s, folder %s", s.name, #blocks > 0 and table.concat(blocks, " x ") or "one trial",
    s.recipe, dir))
  for _, t in ipairs(trials) do print(string.format("%5d  %-48s %s", t.index, t.folder, values_text(t))) end
  print(string.format("%d trial%s, each checked against %s%s", #trials, #trials == 1 and "" or "s", s.recipe,
    s.early_stop and string.format("; successive halving on %s at epochs %s, keeping %g", s.early_stop.metric,
      table.concat(s.early_stop.rungs, ", "), s.early_stop.keep) or ""))
end

-- moves the folder's contents aside (never deletes them); returns where
local function move_aside(dir)
  local aside = dir .. "/replaced-" .. os.date("%Y%m%d-%H%M%S")
  util.mkdir_p(aside)
  local p = io.popen("ls -A " .. util.shell_quote(dir))
  for name in p:lines() do
    if not name:match("^replaced%-") then
      local ok, err = os.rename(dir .. "/" .. name, aside .. "/" .. name)
      if not ok then error("cannot move " .. name .. " aside: " .. tostring(err), 0) end
    end
  end
  p:close()
  return aside
end

local function summarize(dir, rec, parallel, quiet, name)
  local lines = results.collect(dir, rec, runner.hostname())
  results.write(dir, rec, lines)
  require("visreg.report.hook").sweep(dir) -- the sweep's page (protected: a failure only warns)
  if not quiet then
    results.print_table(rec, lines, { exe = exe(), name = name })
    print(results.progress(lines, parallel))
  end
  return lines
end

-- one local driver per sweep folder at a time (Slurm tasks each run their own trial)
local function take_lock(dir, host)
  local path = dir .. "/driver.json"
  local d = store.read_json(path)
  local C = require("visreg.core").C
  if d and d.host == host and d.pid and C.vr_proc_alive(d.pid) ~= 0 then
    error(string.format("another sweep driver (pid %d) is running in %s", d.pid, dir), 0)
  end
  store.write_json(path, { pid = store.pid, host = host })
  return function() os.remove(path) end
end

function M.status(dir)
  if not dir then return fail("status needs the sweep folder\n" .. USAGE) end
  local rec = store.read_json(dir .. "/sweep.json")
  if not rec then return fail(dir .. ": not a sweep folder (no readable sweep.json)") end
  local name = dir:gsub("/+$", ""):match("([^/]+)$")
  local lines = summarize(dir, rec, rec.parallel, false, name)
  local c = results.counts(lines)
  return c.failed > 0 and M.FAILED_TRIALS or M.OK
end

function M.main(args)
  if args[1] == "status" then
    if args[2] == "-h" or args[2] == "--help" then print(USAGE); return 0 end
    return cli.run_protected(function() return M.status(args[2]) end)
  end
  local pos, o = cli.parse(args, { out = "value", ["dry-run"] = "flag", parallel = "value", extend = "flag",
    force = "flag", ["max-trials"] = "value", trial = "value", slurm = "flag", print = "flag", partition = "value",
    time = "value", gpus = "value", cpus = "value", quiet = "flag", set = "list" })
  if not pos then return fail(o .. "\n" .. USAGE) end
  if o.help then print(USAGE); return 0 end
  if #pos ~= 1 then return fail((#pos == 0 and "a sweep file is required" or "expected one sweep file") .. "\n" .. USAGE) end
  local function count_opt(name, min)
    local v = o[name]
    if v == nil then return nil end
    local n = tonumber(v)
    if not n or n % 1 ~= 0 or n < min then error(string.format("--%s: expected an integer >= %d, got %s", name, min, v), 0) end
    return n
  end
  local ok, err = pcall(function()
    o.parallel = count_opt("parallel", 1)
    o.max_trials = count_opt("max-trials", 1)
    o.trial = count_opt("trial", 0)
    o.gpus = count_opt("gpus", 0)
    o.cpus = count_opt("cpus", 1)
  end)
  if not ok then return fail(err) end

  -- the file and its trials: every error here is the file's, with its line and column
  local s, trials
  ok, err = pcall(function()
    s = spec.override(spec.read(pos[1], { max_trials = o.max_trials }), o.set)
    trials = spec.trials(s)
    spec.validate(s, trials)
  end)
  if not ok then return fail(err) end
  local dir = o.out or ("runs/sweeps/" .. s.name)
  if o["dry-run"] then dry_run(s, trials, dir); return 0 end
  if o.trial and s.early_stop then
    return fail("early_stop compares trials with each other, which one Slurm array task cannot do: " ..
      "remove early_stop to run this sweep with --slurm or --trial")
  end

  local host = runner.hostname()
  local unlock = function() end
  local status = cli.run_protected(function()
    -- the folder's record: new, the same, extended, or (with --force) started over
    util.mkdir_p(dir)
    if not o.trial then unlock = take_lock(dir, host) end
    local old = store.read_json(dir .. "/sweep.json")
    local record = store.record(s, trials)
    if old then
      local merged, why, added = store.reconcile(s, trials, old, o.extend)
      if not merged then
        if not o.force then io.stderr:write("visreg sweep: ", why, "\n"); return M.USAGE end
        if o.trial then return fail("--force with --trial: restart the sweep from the driver, not from an array task") end
        say(o.quiet, "the sweep file changed: the old trials are moved to %s", move_aside(dir))
      else
        record.trials = {}
        for i, t in ipairs(merged) do record.trials[i] = { index = t.index, folder = t.folder, seed = t.seed, values = t.values } end
        if added > 0 then say(o.quiet, "extending the sweep by %d trial%s", added, added == 1 and "" or "s") end
      end
    end
    record.parallel = o.parallel or s.parallel
    -- array tasks find it written by --slurm; one started by hand writes the same record
    if not o.trial or not old then store.write_json(dir .. "/sweep.json", record) end

    if o.slurm then
      slurm.submit(s, dir, exe(), record, { partition = o.partition, time = o.time, gpus = o.gpus, cpus = o.cpus }, o.print)
      return 0
    end

    local to_run = record.trials
    if o.trial then
      to_run = {}
      for _, t in ipairs(record.trials) do if t.index == o.trial then to_run[1] = t end end
      if not to_run[1] then error(string.format("--trial %d: the sweep has trials 0 to %d", o.trial, #record.trials - 1), 0) end
    end
    local C = require("visreg.core").C
    say(o.quiet, "sweep %s: %d trial%s, %d at a time, in %s", s.name, #to_run, #to_run == 1 and "" or "s",
      o.trial and 1 or record.parallel, dir)
    local done_count = 0
    local okr, status = pcall(runner.run, { s = s, trials = to_run, dir = dir, exe = exe(), quiet = o.quiet,
      parallel = o.trial and 1 or record.parallel, host = host,
      on_finished = function(t, st)
        done_count = done_count + 1
        local summary = st.status == "done" and store.summary(dir, t)
        local v = summary and summary[s.metric]
        say(o.quiet, "%-6s %s%s  %s", st.status, t.folder,
          st.status == "failed" and (": " .. (st.reason or "")) or
          (type(v) == "number" and string.format(": %s %.4f", s.metric, v) or ""),
          runner.fmt_time(st.wall_seconds or 0))
        -- results as the sweep goes, so that status and reports see them
        results.write(dir, record, results.collect(dir, record, host))
        require("visreg.report.hook").sweep(dir, t) -- the trial's and the sweep's pages (protected)
      end })
    C.vr_host_clear_interrupt()
    if not okr then error(status, 0) end
    local lines = summarize(dir, record, record.parallel, o.quiet or o.trial, s.name)
    if status == "interrupted" then
      say(o.quiet, "interrupted: rerun the same command to resume")
      return M.INTERRUPTED
    end
    local failed = 0
    for _, l in ipairs(lines) do
      if l.status == "failed" and (not o.trial or l.index == o.trial) then failed = failed + 1 end
    end
    return failed > 0 and M.FAILED_TRIALS or M.OK
  end)
  unlock() -- whatever happened, once this driver is done
  return status
end

return M
