-- visreg.sweep.store: the sweep folder on disk.
--
--   sweep.json      the resolved sweep: recipe, fixed values, every trial (index, values, seed,
--                   folder), a hash of the file and of the recipe
--   NNNN-.../       one `visreg train` run folder per trial, plus its trial.json (status,
--                   attempts, exit status, log tail, wall time) and train.log
--   results.jsonl   one line per trial, rebuilt from the trial folders (the one source reports read)
--   results.csv     the same as a table
--
-- Each trial's own files are written only by the process that runs it, and results are rebuilt
-- from them, so Slurm array tasks that share the folder never write the same file.
local util = require "visreg.util"
local spec = require "visreg.sweep.spec"

local M = {}

local read_json = util.read_json
M.read_json = read_json

M.pid = util.pid
M.write = util.write_shared -- Slurm tasks sharing the folder may rewrite the same file at once

local function write_json(path, v) M.write(path, util.json_encode(v, "  ") .. "\n") end
M.write_json = write_json

-- the values of a trial as JSON keeps them: a list of [key, value] in file order
local function encode_trial(t) return { index = t.index, folder = t.folder, seed = t.seed, values = t.values } end

-- the sweep's record: what a rerun must agree with to go on in the same folder
function M.record(s, trials)
  local list = {}
  for i, t in ipairs(trials) do list[i] = encode_trial(t) end
  return { format = "visreg-sweep-1", file = s.file, file_hash = spec.hash(util.read_file(s.file) or ""),
    recipe = s.recipe, recipe_hash = spec.hash(util.read_file(s.recipe) or ""), set = s.set,
    early_stop = s.early_stop or false, metric = s.metric, mode = s.mode, trials = list }
end

-- compares the file's sweep (s, trials) with the folder's sweep.json (old). Returns the trials to
-- use, with the old ones keeping their index and folder and new ones numbered after them, and
-- nil, message when the two differ in more than added trials (or add trials without extend).
function M.reconcile(s, trials, old, extend)
  local changed = {}
  local function same(a, b) return util.json_encode(a) == util.json_encode(b) end
  if old.recipe ~= s.recipe then changed[#changed + 1] = string.format("recipe: %s -> %s", old.recipe, s.recipe)
  elseif old.recipe_hash ~= spec.hash(util.read_file(s.recipe) or "") then
    changed[#changed + 1] = "the recipe file " .. s.recipe .. " was edited"
  end
  if not same(old.set or {}, s.set) then
    changed[#changed + 1] = string.format("set: %s -> %s", util.json_encode(old.set or {}), util.json_encode(s.set))
  end
  if not same(old.early_stop or false, s.early_stop or false) then
    changed[#changed + 1] = string.format("early_stop: %s -> %s", util.json_encode(old.early_stop or false),
      util.json_encode(s.early_stop or false))
  end
  local by_key, old_keys = {}, {}
  for _, t in ipairs(trials) do by_key[spec.trial_key(t)] = t end
  local removed, next_index = {}, 0
  local out = {}
  for _, ot in ipairs(old.trials or {}) do
    local k = spec.trial_key(ot)
    old_keys[k] = true
    next_index = math.max(next_index, ot.index + 1)
    if not by_key[k] then removed[#removed + 1] = ot.folder else out[#out + 1] = ot end
  end
  if #removed > 0 then
    changed[#changed + 1] = string.format("%d trial%s no longer in the file (%s%s)", #removed, #removed == 1 and " is" or "s are",
      table.concat(removed, ", ", 1, math.min(3, #removed)), #removed > 3 and ", ..." or "")
  end
  local added = {}
  for _, t in ipairs(trials) do
    if not old_keys[spec.trial_key(t)] then
      local n = { index = next_index, values = t.values, seed = t.seed }
      n.folder = spec.folder_name(n.index, n.values, n.seed)
      next_index = next_index + 1
      added[#added + 1] = n
      out[#out + 1] = n
    end
  end
  if #changed > 0 then
    return nil, "the sweep file no longer matches this sweep folder:\n  " .. table.concat(changed, "\n  ") ..
      "\nrerun with --force to start the sweep over (the old trials are moved aside, not deleted)"
  end
  if #added > 0 and not extend then
    return nil, string.format("the sweep file adds %d trial%s to this sweep folder; rerun with --extend to run %s",
      #added, #added == 1 and "" or "s", #added == 1 and "it" or "them")
  end
  return out, nil, #added
end

---------------------------------------------------------------- one trial's files
function M.trial_dir(dir, t) return dir .. "/" .. t.folder end

function M.trial_state(dir, t) return read_json(M.trial_dir(dir, t) .. "/trial.json") or { status = "pending", attempts = 0 } end

function M.save_trial_state(dir, t, st)
  util.mkdir_p(M.trial_dir(dir, t))
  write_json(M.trial_dir(dir, t) .. "/trial.json", st)
end

function M.summary(dir, t) return read_json(M.trial_dir(dir, t) .. "/summary.json") end

-- the epoch lines of a trial's metrics.jsonl, by epoch number (1-based; a resumed run's later
-- line for an epoch wins)
function M.epochs(dir, t)
  local out = {}
  local f = io.open(M.trial_dir(dir, t) .. "/metrics.jsonl", "rb")
  if not f then return out end
  for line in f:lines() do
    if line:find('"type":"epoch"', 1, true) then
      local ok, e = pcall(util.json_decode, line)
      if ok and type(e) == "table" and type(e.epoch) == "number" then out[e.epoch + 1] = e end
    end
  end
  f:close()
  return out
end

function M.has_checkpoint(dir, t) return util.file_exists(M.trial_dir(dir, t) .. "/checkpoint.safetensors") end

-- the last n lines of a file
function M.tail(path, n)
  local s = util.read_file(path)
  if not s then return "" end
  local lines = {}
  for line in s:gmatch("[^\n]+") do
    lines[#lines + 1] = line
    if #lines > n then table.remove(lines, 1) end
  end
  return table.concat(lines, "\n")
end

return M
