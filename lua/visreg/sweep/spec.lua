-- visreg.sweep.spec: a sweep file (YAML) to a checked sweep and its list of trials.
--
-- Blocks that are present multiply: grid (Cartesian product, the last key fastest) x zip positions
-- x random draws x seeds. Every error names the file, line and column of the value at fault.
-- A trial is { index, values = { {key, value}, ... } (file order), seed, folder }; its values are
-- given to `visreg train` as `--set key=value`, after the file's fixed `set` block.
local yaml = require "visreg.yaml"
local util = require "visreg.util"
local bit = require "bit"
local ffi = require "ffi"

local M = {}

-- past this many trials a sweep is refused unless --max-trials says more
M.MAX_TRIALS = 10000

local TOP_KEYS = { "recipe", "name", "set", "grid", "zip", "random", "seeds", "metric", "mode", "parallel", "devices",
  "per_device", "early_stop", "retries", "slurm", "max_trials", "ranks" }
local DISTRIBUTIONS = { "uniform", "loguniform", "choice", "randint" }
local SLURM_KEYS = { "partition", "time", "gpus", "cpus", "mem", "account", "qos", "parallel", "extra" }

---------------------------------------------------------------- errors at a position
local function fail(at, fmt, ...)
  error(string.format("%s: " .. fmt, at, ...), 0)
end

-- a value as a message shows it
local function describe(v)
  if v == yaml.null or v == nil then return "nothing (null)" end
  if type(v) == "table" then return yaml.kind(v) == "map" and "a mapping" or "a list" end
  if type(v) == "string" then return string.format("the string %q", v) end
  return tostring(v)
end

local function is_int(v) return type(v) == "number" and v % 1 == 0 and v > -2 ^ 53 and v < 2 ^ 53 end

local function check_keys(t, allowed, what)
  local set = {}
  for _, k in ipairs(allowed) do set[k] = true end
  for _, k in ipairs(yaml.keys(t)) do
    if not set[k] then
      fail(yaml.where(t, k), "unknown key '%s'%s; valid keys: %s", tostring(k), what and (" in " .. what) or "",
        table.concat(util.nearest(tostring(k), allowed, #allowed), ", "))
    end
  end
end

local function want_map(t, at, what)
  if type(t) ~= "table" or yaml.kind(t) ~= "map" then
    fail(at, "%s: expected a mapping of key: value, got %s", what, describe(t))
  end
end

local function want_list(v, at, what, allow_empty)
  if type(v) ~= "table" or yaml.kind(v) == "map" then fail(at, "%s: expected a list like [a, b], got %s", what, describe(v)) end
  if #v == 0 and not allow_empty then fail(at, "%s: the list is empty", what) end
end

local function want_int(v, at, what, min)
  if not is_int(v) or v < min then fail(at, "%s: expected an integer >= %d, got %s", what, min, describe(v)) end
  return v
end

---------------------------------------------------------------- values
-- the text `--set` reads back as the same value (numbers to 10 significant digits, lists as {a,b})
local function set_text(v)
  if type(v) == "number" then
    if is_int(v) then return string.format("%d", v) end
    return (string.format("%.10g", v))
  elseif type(v) == "boolean" then
    return tostring(v)
  elseif type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = set_text(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return tostring(v)
end
M.set_text = set_text

-- a value a --set accepts: a scalar, or a list of scalars
local function check_value(v, at, key)
  if v == yaml.null then fail(at, "%s: a value is required (got null)", key) end
  if type(v) == "table" then
    if yaml.kind(v) == "map" then fail(at, "%s: expected a scalar or a list of scalars, got a mapping", key) end
    for i, x in ipairs(v) do
      if type(x) == "table" or x == yaml.null then
        fail(yaml.where(v, i), "%s: a list value may hold only scalars", key)
      end
    end
  elseif type(v) == "string" and v:find(",", 1, true) then
    fail(at, "%s: a string value may not contain a comma (--set reads it as a list): %q", key, v)
  end
  if type(v) == "number" and v ~= v then fail(at, "%s: NaN is not a value", key) end
  return v
end

---------------------------------------------------------------- random draws
-- splitmix64: a small, well-mixed generator with the same draws on every machine
local function splitmix(seed)
  local state = ffi.new("uint64_t", seed)
  return function()
    state = state + 0x9E3779B97F4A7C15ULL
    local z = state
    z = bit.bxor(z, bit.rshift(z, 30)) * 0xBF58476D1CE4E5B9ULL
    z = bit.bxor(z, bit.rshift(z, 27)) * 0x94D049BB133111EBULL
    z = bit.bxor(z, bit.rshift(z, 31))
    return tonumber(bit.rshift(z, 11)) / 2 ^ 53 -- uniform in [0, 1)
  end
end

-- a draw, rounded to 6 significant digits so that the folder name and --set carry the same value
local function round6(x) return tonumber(string.format("%.6g", x)) end

local function check_distribution(key, spec, at)
  want_map(spec, at, key)
  local kinds = yaml.keys(spec)
  if #kinds ~= 1 then
    fail(at, "%s: expected one distribution, like { loguniform: [1.0e-4, 1.0e-2] } (one of: %s)", key,
      table.concat(DISTRIBUTIONS, ", "))
  end
  local kind, args = kinds[1], spec[kinds[1]]
  local pos = yaml.where(spec, kind)
  local known = false
  for _, d in ipairs(DISTRIBUTIONS) do known = known or d == kind end
  if not known then
    fail(pos, "%s: unknown distribution '%s'; valid: %s", key, tostring(kind),
      table.concat(util.nearest(tostring(kind), DISTRIBUTIONS, #DISTRIBUTIONS), ", "))
  end
  want_list(args, pos, key .. "." .. kind)
  if kind == "choice" then
    for i, v in ipairs(args) do check_value(v, yaml.where(args, i), key) end
    return { kind = kind, values = args }
  end
  if #args ~= 2 or type(args[1]) ~= "number" or type(args[2]) ~= "number" then
    fail(pos, "%s.%s: expected [low, high] numbers", key, kind)
  end
  local lo, hi = args[1], args[2]
  if not (lo < hi) then fail(pos, "%s.%s: expected low < high, got [%s, %s]", key, kind, set_text(lo), set_text(hi)) end
  if kind == "loguniform" and lo <= 0 then fail(pos, "%s.loguniform: expected 0 < low, got %s", key, set_text(lo)) end
  if kind == "randint" and not (is_int(lo) and is_int(hi)) then
    fail(pos, "%s.randint: expected integers [low, high] (both included)", key)
  end
  return { kind = kind, lo = lo, hi = hi }
end

local function draw(d, u)
  if d.kind == "choice" then return d.values[math.min(#d.values, math.floor(u * #d.values) + 1)] end
  if d.kind == "randint" then return math.min(d.hi, d.lo + math.floor(u * (d.hi - d.lo + 1))) end
  if d.kind == "loguniform" then return round6(math.exp(math.log(d.lo) + u * (math.log(d.hi) - math.log(d.lo)))) end
  return round6(d.lo + u * (d.hi - d.lo))
end

---------------------------------------------------------------- the blocks
-- each block gives a list of "positions", each a list of {key, value}; blocks multiply
local function keyed_lists(block, at, what, same_length)
  want_map(block, at, what)
  local keys = yaml.keys(block)
  if #keys == 0 then fail(at, "%s: the block is empty", what) end
  local n
  for _, k in ipairs(keys) do
    local list, pos = block[k], yaml.where(block, k)
    want_list(list, pos, what .. "." .. k)
    for i, v in ipairs(list) do check_value(v, yaml.where(list, i), k) end
    if same_length and n and #list ~= n then
      fail(pos, "%s.%s: %d values, but %s has %d (zip varies its keys together: give each the same count)", what, k, #list,
        keys[1], n)
    end
    n = n or #list
  end
  return keys
end

local function grid_positions(block, keys)
  local out = { {} }
  for _, k in ipairs(keys) do
    local next_out = {}
    for _, prefix in ipairs(out) do
      for _, v in ipairs(block[k]) do
        local p = { unpack(prefix) }
        p[#p + 1] = { k, v }
        next_out[#next_out + 1] = p
      end
    end
    out = next_out
  end
  return out
end

local function zip_positions(block, keys)
  local out = {}
  for i = 1, #block[keys[1]] do
    local p = {}
    for _, k in ipairs(keys) do p[#p + 1] = { k, block[k][i] } end
    out[i] = p
  end
  return out
end

local function random_positions(block, at)
  want_map(block, at, "random")
  check_keys(block, { "n", "seed", "params" }, "random")
  local n = want_int(block.n, yaml.where(block, "n") or at, "random.n", 1)
  local seed = block.seed == nil and 0 or want_int(block.seed, yaml.where(block, "seed"), "random.seed", 0)
  if block.params == nil then fail(at, "random: a 'params' block of key: { distribution: [...] } is required") end
  local params = block.params
  want_map(params, yaml.where(block, "params"), "random.params")
  local keys = yaml.keys(params)
  if #keys == 0 then fail(yaml.where(block, "params"), "random.params: the block is empty") end
  local dists = {}
  for i, k in ipairs(keys) do dists[i] = check_distribution(k, params[k], yaml.where(params, k)) end
  local u = splitmix(seed)
  local out = {}
  for d = 1, n do
    local p = {}
    for i, k in ipairs(keys) do p[i] = { k, draw(dists[i], u()) } end
    out[d] = p
  end
  return out, keys
end

---------------------------------------------------------------- names
local function fnv1a(s)
  local h = 14695981039346656037ULL
  for i = 1, #s do h = bit.bxor(h, s:byte(i)) * 1099511628211ULL end
  return bit.tohex(h)
end
M.hash = fnv1a

-- "0007-loss.lambda=0.8-loss.slices=1024-seed=1"; characters that are awkward in a path become
-- '_', and a long name is cut with a hash of the whole so that two names never collide
local function folder_name(index, values, seed)
  local parts = { string.format("%04d", index) }
  for _, kv in ipairs(values) do parts[#parts + 1] = kv[1] .. "=" .. set_text(kv[2]) end
  if seed then parts[#parts + 1] = "seed=" .. seed end
  local name = table.concat(parts, "-"):gsub("[^%w%._=,+%-]", "_")
  if #name > 96 then name = name:sub(1, 80) .. "~" .. fnv1a(name):sub(1, 8) end
  return name
end
M.folder_name = folder_name

-- a trial's identity: its values and seed, whatever its index
function M.trial_key(t)
  local parts = {}
  for _, kv in ipairs(t.values) do parts[#parts + 1] = kv[1] .. "=" .. set_text(kv[2]) end
  table.sort(parts)
  if t.seed then parts[#parts + 1] = "seed=" .. t.seed end
  return table.concat(parts, "\0")
end

---------------------------------------------------------------- the file
local function dirname(path) return path:match("^(.*)/[^/]*$") or "." end
local function is_abs(path) return path:sub(1, 1) == "/" end
-- "recipes/sweeps/../x.lua" -> "recipes/x.lua" (the path a person would type)
local function normalize(path)
  local parts = {}
  for p in path:gmatch("[^/]+") do
    if p == ".." and #parts > 0 and parts[#parts] ~= ".." then table.remove(parts)
    elseif p ~= "." then parts[#parts + 1] = p end
  end
  return (is_abs(path) and "/" or "") .. table.concat(parts, "/")
end

-- read(path, opts) -> the checked sweep: { file, dir, recipe (path), name, set = {{k, v}...},
-- blocks, seeds, metric, mode, parallel, devices, per_device, early_stop, retries, ranks, slurm,
-- count (trials), where = function(key) -> position }; trials come from M.trials(s)
function M.read(path, opts)
  opts = opts or {}
  local doc = yaml.load(path)
  local top = yaml.where(doc) or (path .. ":1:1")
  if doc == yaml.null or doc == nil then fail(path .. ":1:1", "the file is empty; a sweep needs at least 'recipe'") end
  want_map(doc, top, "the sweep")
  check_keys(doc, TOP_KEYS)
  local at = function(k) return yaml.where(doc, k) or top end
  local s = { file = path, dir = dirname(path), positions = {} }

  if type(doc.recipe) ~= "string" then fail(at("recipe"), "recipe: the recipe file (relative to this file) is required") end
  s.recipe = normalize(is_abs(doc.recipe) and doc.recipe or (s.dir .. "/" .. doc.recipe))
  if not util.file_exists(s.recipe) then fail(at("recipe"), "recipe: cannot open %s", s.recipe) end
  s.name = doc.name ~= nil and tostring(doc.name) or path:match("([^/]+)%.ya?ml$") or "sweep"
  if not s.name:match("^[%w%._%-]+$") then fail(at("name"), "name: letters, digits, '.', '_' and '-' only, got %q", s.name) end

  -- where each key's value stands, for the recipe's messages
  local function note(key, pos, block)
    if s.positions[key] then
      fail(pos, "%s: already given in %s (%s); a key may be swept or set in one place only", key,
        s.positions[key].block, s.positions[key].at)
    end
    s.positions[key] = { at = pos, block = block }
  end

  s.set = {}
  if doc.set ~= nil then
    want_map(doc.set, at("set"), "set")
    for _, k in ipairs(yaml.keys(doc.set)) do
      local pos = yaml.where(doc.set, k)
      note(k, pos, "set")
      s.set[#s.set + 1] = { k, check_value(doc.set[k], pos, k) }
    end
  end

  -- the blocks, each a list of positions, in the order they multiply
  s.blocks = {}
  if doc.grid ~= nil then
    local keys = keyed_lists(doc.grid, at("grid"), "grid")
    for _, k in ipairs(keys) do note(k, yaml.where(doc.grid, k), "grid") end
    s.blocks[#s.blocks + 1] = { name = "grid", keys = keys, positions = grid_positions(doc.grid, keys) }
  end
  if doc.zip ~= nil then
    local keys = keyed_lists(doc.zip, at("zip"), "zip", true)
    for _, k in ipairs(keys) do note(k, yaml.where(doc.zip, k), "zip") end
    s.blocks[#s.blocks + 1] = { name = "zip", keys = keys, positions = zip_positions(doc.zip, keys) }
  end
  if doc.random ~= nil then
    local positions, keys = random_positions(doc.random, at("random"))
    for _, k in ipairs(keys) do note(k, yaml.where(doc.random.params, k), "random") end
    s.blocks[#s.blocks + 1] = { name = "random", keys = keys, positions = positions }
  end
  if doc.seeds ~= nil then
    want_list(doc.seeds, at("seeds"), "seeds")
    s.seeds = {}
    for i, v in ipairs(doc.seeds) do s.seeds[i] = want_int(v, yaml.where(doc.seeds, i), "seeds", 0) end
    note("seed", at("seeds"), "seeds")
  end

  s.metric = doc.metric == nil and "linear_probe" or doc.metric
  if type(s.metric) ~= "string" then fail(at("metric"), "metric: expected a name from summary.json, got %s", describe(s.metric)) end
  s.mode = doc.mode == nil and "max" or doc.mode
  if s.mode ~= "max" and s.mode ~= "min" then fail(at("mode"), "mode: expected max or min, got %s", describe(s.mode)) end
  s.retries = doc.retries == nil and 0 or want_int(doc.retries, at("retries"), "retries", 0)
  -- ranks: each trial a data-parallel job of that many processes (mpirun locally, srun's tasks on Slurm)
  s.ranks = doc.ranks == nil and 1 or want_int(doc.ranks, at("ranks"), "ranks", 1)
  s.per_device = doc.per_device == nil and 1 or want_int(doc.per_device, at("per_device"), "per_device", 1)
  if doc.devices ~= nil then
    want_list(doc.devices, at("devices"), "devices")
    s.devices = {}
    for i, v in ipairs(doc.devices) do s.devices[i] = want_int(v, yaml.where(doc.devices, i), "devices", 0) end
  end
  s.parallel = doc.parallel == nil and (s.devices and #s.devices * s.per_device or 1)
    or want_int(doc.parallel, at("parallel"), "parallel", 1)
  s.max_trials = doc.max_trials == nil and M.MAX_TRIALS or want_int(doc.max_trials, at("max_trials"), "max_trials", 1)
  if opts.max_trials then s.max_trials = opts.max_trials end

  if doc.early_stop ~= nil then
    local e, pos = doc.early_stop, at("early_stop")
    want_map(e, pos, "early_stop")
    check_keys(e, { "metric", "rungs", "keep", "mode" }, "early_stop")
    local es = { metric = e.metric == nil and "online_probe" or e.metric, keep = e.keep == nil and 0.5 or e.keep,
      mode = e.mode == nil and "max" or e.mode }
    if type(es.metric) ~= "string" then fail(yaml.where(e, "metric"), "early_stop.metric: expected a name logged per epoch") end
    if es.mode ~= "max" and es.mode ~= "min" then fail(yaml.where(e, "mode"), "early_stop.mode: expected max or min") end
    if type(es.keep) ~= "number" or not (es.keep > 0 and es.keep < 1) then
      fail(yaml.where(e, "keep") or pos, "early_stop.keep: expected the fraction kept at each rung, 0 < keep < 1, got %s",
        describe(e.keep))
    end
    if e.rungs == nil then fail(pos, "early_stop: 'rungs' (the epochs at which trials are compared) is required") end
    want_list(e.rungs, yaml.where(e, "rungs"), "early_stop.rungs")
    es.rungs = {}
    for i, r in ipairs(e.rungs) do
      es.rungs[i] = want_int(r, yaml.where(e.rungs, i), "early_stop.rungs", 1)
      if i > 1 and r <= es.rungs[i - 1] then fail(yaml.where(e.rungs, i), "early_stop.rungs: expected increasing epochs") end
    end
    s.early_stop = es
  end

  if doc.slurm ~= nil then
    want_map(doc.slurm, at("slurm"), "slurm")
    check_keys(doc.slurm, SLURM_KEYS, "slurm")
    s.slurm = {}
    for _, k in ipairs(yaml.keys(doc.slurm)) do
      local v = doc.slurm[k]
      if k == "extra" then
        want_list(v, yaml.where(doc.slurm, k), "slurm.extra", true)
        for i, x in ipairs(v) do
          if type(x) ~= "string" then fail(yaml.where(v, i), "slurm.extra: expected sbatch options as strings") end
        end
      elseif k == "parallel" or k == "gpus" or k == "cpus" then
        want_int(v, yaml.where(doc.slurm, k), "slurm." .. k, k == "gpus" and 0 or 1)
      elseif type(v) ~= "string" and type(v) ~= "number" then
        fail(yaml.where(doc.slurm, k), "slurm.%s: expected a string", k)
      end
      s.slurm[k] = v
    end
  end

  -- the count before anything is listed, so that a huge grid is refused at once
  local count = 1
  for _, b in ipairs(s.blocks) do count = count * #b.positions end
  count = count * (s.seeds and #s.seeds or 1)
  s.count = count
  if count > s.max_trials then
    fail(top, "%d trials, more than the limit of %d (raise it with --max-trials N or max_trials: N)", count, s.max_trials)
  end
  return s
end

-- every trial of the sweep, in order: { index (0-based), values = {{k, v}...}, seed, folder }
function M.trials(s)
  local combos = { {} }
  for _, b in ipairs(s.blocks) do
    local next_combos = {}
    for _, c in ipairs(combos) do
      for _, p in ipairs(b.positions) do
        local v = { unpack(c) }
        for _, kv in ipairs(p) do v[#v + 1] = kv end
        next_combos[#next_combos + 1] = v
      end
    end
    combos = next_combos
  end
  local out = {}
  for _, values in ipairs(combos) do
    for _, seed in ipairs(s.seeds or { false }) do
      local t = { index = #out, values = values, seed = seed or nil }
      t.folder = folder_name(t.index, values, t.seed)
      out[#out + 1] = t
    end
  end
  return out
end

-- command-line `--set key=value` for a whole sweep (e.g. larger subsets and more epochs on a
-- GPU): replaces the file's fixed value of key, or adds one; a swept key is refused
function M.override(s, list)
  for _, o in ipairs(list or {}) do
    local k, text = o:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
    if not k or k == "" then error(string.format("--set: expected key.path=value, got '%s'", o), 0) end
    local where = s.positions[k]
    if where and where.block ~= "set" then
      error(string.format("--set %s: the file sweeps this key (%s, %s)", k, where.block, where.at), 0)
    end
    local v = require("visreg.recipe").parse_value(text) -- as `visreg train --set` reads it
    local found = false
    for _, kv in ipairs(s.set) do if kv[1] == k then kv[2], found = v, true end end
    if not found then s.set[#s.set + 1] = { k, v }; s.positions[k] = { at = "--set", block = "set" } end
  end
  return s
end

-- the --set list of a trial: the file's fixed values, then the trial's own
function M.overrides(s, t)
  local out = {}
  for _, kv in ipairs(s.set) do out[#out + 1] = kv[1] .. "=" .. set_text(kv[2]) end
  for _, kv in ipairs(t.values) do out[#out + 1] = kv[1] .. "=" .. set_text(kv[2]) end
  if t.seed then out[#out + 1] = "seed=" .. t.seed end
  return out
end

-- Loads the recipe with every trial's overrides (no data is read); an unknown key, a value of the
-- wrong type or a value the recipe refuses is reported at the sweep file's line and column.
function M.validate(s, trials)
  local recipe = require "visreg.recipe"
  local source = util.read_file(s.recipe)
  if not source then error("cannot open recipe " .. s.recipe, 0) end
  local seen = {}
  for _, t in ipairs(trials) do
    local ov = M.overrides(s, t)
    local key = table.concat(ov, "\0")
    if not seen[key] then
      seen[key] = true
      local ok, err = pcall(recipe.load_source, source, s.recipe, ov)
      if not ok then
        err = tostring(err)
        -- the key the message is about: the longest swept or set key it names
        local best
        for k, p in pairs(s.positions) do
          if err:find(k, 1, true) and (not best or #k > #best) then best = k end
        end
        local pos = best and s.positions[best].at or s.file
        error(string.format("%s: trial %s: %s", pos, folder_name(t.index, t.values, t.seed), err:gsub("^after %-%-set: ", "")), 0)
      end
    end
  end
  return true
end

return M
