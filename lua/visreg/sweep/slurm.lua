-- visreg.sweep.slurm: the sweep as a Slurm job array. sweep.sbatch runs one trial per array task
-- (`visreg sweep FILE --trial $SLURM_ARRAY_TASK_ID` in the same sweep folder), so a cluster runs
-- exactly what the local driver runs. Tasks are requeueable, and Slurm sends SIGINT two minutes
-- before the time limit: the trial saves a checkpoint, and a requeued or resubmitted task resumes
-- from it. `visreg sweep status DIR` collects the results.
local util = require "visreg.util"
local store = require "visreg.sweep.store"

local M = {}

local cwd_cache
local function cwd()
  if not cwd_cache then
    local p = io.popen("pwd")
    cwd_cache = p and p:read("*l") or os.getenv("PWD") or "."
    if p then p:close() end
  end
  return cwd_cache
end
local function abs(path) return path:sub(1, 1) == "/" and path or (cwd() .. "/" .. path:gsub("^%./", "")) end
M.abs = abs

-- "0-3,5,7-9" from sorted indices
local function ranges(idx)
  local out, i = {}, 1
  while i <= #idx do
    local j = i
    while j < #idx and idx[j + 1] == idx[j] + 1 do j = j + 1 end
    out[#out + 1] = i == j and tostring(idx[i]) or (idx[i] .. "-" .. idx[j])
    i = j + 1
  end
  return table.concat(out, ",")
end
M.ranges = ranges

-- the indices of the trials that have not finished
function M.pending(dir, rec)
  local idx = {}
  for _, t in ipairs(rec.trials) do
    local st = store.trial_state(dir, t).status
    if st ~= "done" and st ~= "stopped" then idx[#idx + 1] = t.index end
  end
  table.sort(idx)
  return idx
end

-- the sbatch script; o: options from the command line (partition, time, gpus, cpus), which win
-- over the file's slurm block
function M.script(s, dir, exe, indices, o)
  local cfg = {}
  for k, v in pairs(s.slurm or {}) do cfg[k] = v end
  for k, v in pairs(o or {}) do cfg[k] = v end
  local parallel = cfg.parallel or s.parallel
  local lines = {
    "#!/bin/sh",
    "# " .. s.name .. ": one array task per trial (written by `visreg sweep --slurm`)",
    "#SBATCH --job-name=visreg-" .. s.name,
    string.format("#SBATCH --array=%s%%%d", ranges(indices), parallel),
    "#SBATCH --output=" .. abs(dir) .. "/slurm/%A_%a.log",
    "#SBATCH --open-mode=append",
    "#SBATCH --requeue",
    "#SBATCH --signal=B:INT@120",
  }
  local function opt(flag, v) if v ~= nil then lines[#lines + 1] = "#SBATCH --" .. flag .. "=" .. tostring(v) end end
  opt("partition", cfg.partition)
  opt("time", cfg.time)
  opt("cpus-per-task", cfg.cpus)
  if (s.ranks or 1) > 1 then opt("ntasks", s.ranks) end -- a trial's ranks, started by its mpirun
  if cfg.gpus and tonumber(cfg.gpus) > 0 then opt("gpus-per-task", cfg.gpus) end
  opt("mem", cfg.mem)
  opt("account", cfg.account)
  opt("qos", cfg.qos)
  for _, e in ipairs(cfg.extra or {}) do lines[#lines + 1] = "#SBATCH " .. e end
  lines[#lines + 1] = "cd " .. util.shell_quote(cwd()) .. " || exit 1"
  lines[#lines + 1] = string.format("exec %s sweep %s --out %s --trial \"$SLURM_ARRAY_TASK_ID\"", util.shell_quote(abs(exe)),
    util.shell_quote(abs(s.file)), util.shell_quote(abs(dir)))
  return table.concat(lines, "\n") .. "\n"
end

local function have(cmd) local ok = os.execute("command -v " .. cmd .. " >/dev/null 2>&1"); return ok == 0 or ok == true end

-- writes DIR/sweep.sbatch and, unless print_only, submits it; returns the job id or nil
function M.submit(s, dir, exe, rec, o, print_only)
  local indices = M.pending(dir, rec)
  if #indices == 0 then
    print("every trial has finished; nothing to submit (visreg sweep status " .. dir .. ")")
    return nil
  end
  util.mkdir_p(dir .. "/slurm")
  local path = dir .. "/sweep.sbatch"
  util.write_file(path, M.script(s, dir, exe, indices, o))
  os.execute("chmod +x " .. util.shell_quote(path))
  if print_only then
    print(string.format("wrote %s (%d array task%s); submit it with: sbatch %s", path, #indices, #indices == 1 and "" or "s", path))
    return nil
  end
  if not have("sbatch") then
    error("sbatch is not on PATH: wrote " .. path .. "; submit it where Slurm is, or use --print", 0)
  end
  local p = io.popen("sbatch --parsable " .. util.shell_quote(path) .. " 2>&1")
  local out = p:read("*a")
  local ok = p:close()
  local job = out:match("^(%d+)")
  if not job or (ok ~= true and ok ~= 0) then error("sbatch " .. path .. " failed: " .. out, 0) end
  store.write_json(dir .. "/slurm.json", { job = job, tasks = #indices, submitted = os.date("!%Y-%m-%dT%H:%M:%SZ") })
  print(string.format("submitted job %s: %d array task%s from %s; follow it with: visreg sweep status %s", job, #indices,
    #indices == 1 and "" or "s", path, dir))
  return job
end

return M
