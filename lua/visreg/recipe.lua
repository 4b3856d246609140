-- visreg.recipe: recipes are data. vr.recipe{...} checks a recipe table and fills its defaults;
-- vr.recipe.extend(base, overrides) builds one on a base recipe file; load(path, overrides) runs a
-- recipe file (errors name the recipe's file:line), applies `--set key.path=value` overrides
-- (numbers, strings, booleans and lists; an unknown key is refused with the nearest valid keys),
-- checks the result and returns it with the recipe's self-contained text.
local util = require "visreg.util"
local schedule = require "visreg.schedule"

local M = {}

local REQUIRED = {}
local function defaults()
  return {
    name = false,        -- defaults to the recipe file's name
    seed = 0,
    epochs = 10,
    batch = 256,         -- images per view per step
    device = "auto",     -- cpu, cuda or auto (cuda when a GPU is present)
    threads = 0,         -- CPU threads for the kernels (0: all)
    data = REQUIRED,
    views = REQUIRED,
    model = REQUIRED,
    loss = REQUIRED,
    optim = false,       -- default AdamW
    schedule = {},
    eval = false,
    log = { every = 50, progress = "auto" },
    checkpoint = { every = 1 }, -- epochs between checkpoints (0: only at the end)
    -- augment_on: where views are made: cpu (the loader's worker threads), device (the training
    -- device, from raw u8 batches: the same views) or auto (device on CUDA, cpu on the CPU)
    loader = { workers = 2, prefetch = 2, augment_on = "auto" },
    -- f32, or bf16: the encoder and projector forward under autocast (matmuls and convolutions
    -- in bf16 with f32 accumulation, their results back in f32; parameters, norms, losses,
    -- regularizer, optimizer state, the online probe and evaluation in f32). Meant for CUDA
    -- (tensor cores); on the CPU it runs too, correct but slower than f32 (bf16 is emulated)
    precision = "f32",
    -- CUDA: true picks each convolution's cuDNN algorithm by timing the deterministic ones on
    -- its first call (as torch.backends.cudnn.benchmark); false takes cuDNN's heuristic choice
    cudnn_benchmark = false,
    -- contiguous, or channels_last: the encoder's convolutional activations are [N, H, W, C]
    -- (model:to_memory_format, as PyTorch's memory_format=torch.channels_last), the layout
    -- cuDNN's bf16 tensor-core convolutions work in without transposes; the same parameters,
    -- checkpoints and features. The projector (an MLP) is left as it is
    memory_format = "contiguous",
    -- several ranks (mpirun, srun): slices "shared" (the same on every rank: the loss equals one
    -- process's on the global batch) or "per_rank" (each rank its own draw: K x ranks slices);
    -- sync_bn: batch norm with the global batch's statistics (default: each rank its own);
    -- timeout: seconds a rank waits for the others in a collective before it ends the job
    dist = { slices = "shared", sync_bn = false, timeout = 600 },
  }
end
-- probe_l2: the L2 penalties tried by the offline linear probe (the best is kept, as the reference
-- does); probe_iters: its L-BFGS iterations; probe_lr: the online probe's AdamW learning rate
local eval_defaults = { online_probe = true, linear_probe = true, knn = { k = 20, T = 0.07 }, batch = 1000,
  probe_lr = 1e-2, probe_l2 = { 0, 1e-4, 1e-3 }, probe_iters = 200, shot_groups = false }
local view_defaults = { n = 2, size = false, pipeline = {} }

local function fail(msg, ...) util.error("vr.recipe: " .. msg, ...) end

---------------------------------------------------------------- key paths
local function split_path(path)
  local parts = {}
  for p in path:gmatch("[^%.]+") do parts[#parts + 1] = tonumber(p) or p end
  return parts
end
M.split_path = split_path

local function is_scalar(v)
  local t = type(v)
  return t == "number" or t == "string" or t == "boolean"
end
local function is_scalar_list(v)
  if type(v) ~= "table" or not util.is_array(v) then return false end
  for _, x in ipairs(v) do if not is_scalar(x) then return false end end
  return true
end

-- every settable key path (numbers, strings, booleans and lists of them), sorted
function M.paths(r)
  local out = {}
  local function walk(t, prefix, depth)
    if depth > 8 then return end
    for _, k in ipairs(util.sorted_keys(t)) do
      local v = t[k]
      if not (type(k) == "string" and k:sub(1, 1) == "_") and (type(k) == "string" or type(k) == "number") then
        local p = prefix == "" and tostring(k) or prefix .. "." .. tostring(k)
        if is_scalar(v) then out[#out + 1] = p
        elseif type(v) == "table" then
          if is_scalar_list(v) then out[#out + 1] = p end
          walk(v, p, depth + 1)
        end
      end
    end
  end
  walk(r, "", 0)
  return out
end

-- the value at a key path, and its parent table and last key
function M.get(r, path)
  local parts = split_path(path)
  local t = r
  for i = 1, #parts - 1 do
    t = t[parts[i]]
    if type(t) ~= "table" then return nil end
  end
  return t[parts[#parts]], t, parts[#parts]
end

function M.set(r, path, v)
  local _, parent, key = M.get(r, path)
  if parent == nil then error("no key " .. path, 0) end
  parent[key] = v
end

-- unknown-key message with the nearest valid keys
local function unknown_key(what, key, r)
  local near = util.nearest(key, M.paths(r), 5)
  return string.format("%s: unknown key '%s'; nearest valid keys: %s", what, key, table.concat(near, ", "))
end

---------------------------------------------------------------- --set values
local function parse_scalar(s)
  s = s:match("^%s*(.-)%s*$")
  if s == "true" then return true end
  if s == "false" then return false end
  local n = tonumber(s)
  if n then return n end
  local q = s:match('^"(.*)"$') or s:match("^'(.*)'$")
  if q then return q end
  return s
end

-- value text -> Lua value, shaped like the old value where there is one
function M.parse_value(text, old)
  local list = text:match("^%s*[%[{](.*)[%]}]%s*$")
  if list or type(old) == "table" then
    local body = list or text
    local out = {}
    for item in body:gmatch("[^,]+") do out[#out + 1] = parse_scalar(item) end
    return out
  end
  if type(old) == "string" then
    return text:match('^"(.*)"$') or text:match("^'(.*)'$") or text
  end
  local v = parse_scalar(text)
  if type(old) == "boolean" and type(v) == "number" and (v == 0 or v == 1) then v = (v == 1) end
  return v
end

function M.apply_overrides(r, overrides)
  for _, o in ipairs(overrides or {}) do
    local key, text = o:match("^%s*([^=]-)%s*=(.*)$")
    if not key or key == "" then error(string.format("--set: expected key.path=value, got '%s'", o), 0) end
    local old, parent, last = M.get(r, key)
    local valid = false
    for _, p in ipairs(M.paths(r)) do if p == key then valid = true; break end end
    if not valid and type(old) == "table" and (text == "false" or text == "none") then
      valid = true -- a table of settings may be switched off (eval.knn=false)
      old = false
    end
    if not valid then
      if old ~= nil and (type(old) == "function" or type(old) == "table") then
        error(string.format("--set %s: this key holds a %s, which cannot be set from the command line",
          key, util.is_callable(old) and "function" or "table of settings"), 0)
      end
      error("--set " .. unknown_key(key, key, r):gsub("^[^:]*: ", ""), 0)
    end
    local v = M.parse_value(text, old)
    -- 0 and 1 stand for false and true only where the key takes a boolean (size = false is "not
    -- set", and --set views.global.size=0 is a size of 0, not false)
    local rule = M.rule_for(r, key)
    if type(v) == "boolean" and type(old) == "boolean" and rule and not rule.boolean and text:match("^%s*[01]%s*$") then
      v = tonumber(text)
    end
    if type(old) == "number" and type(v) ~= "number" then
      error(string.format("--set %s: expected a number, got '%s'", key, text), 0)
    end
    if type(old) == "boolean" and type(v) ~= "boolean" and old == true then
      error(string.format("--set %s: expected true or false, got '%s'", key, text), 0)
    end
    parent[last] = v
  end
  return r
end

---------------------------------------------------------------- checks
-- The recipe's own values and the values they may take, by key path (a path whose parent is not a
-- table is skipped: views.local.n without local views, eval.knn.k with knn = true). The components'
-- rules (loss, optim, data, augmentations, schedules) sit beside their defaults (util.spec).
local COUNT, COUNT0 = { int = true, min = 1 }, { int = true, min = 0 }
local VIEW_SIZE = { size = true, optional = true }
local RULES = {
  epochs = COUNT0, batch = COUNT, seed = COUNT0, threads = COUNT0,
  device = { oneof = { "cpu", "cuda", "auto" } },
  precision = { oneof = { "f32", "bf16" } },
  memory_format = { oneof = { "contiguous", "channels_last" } },
  cudnn_benchmark = { boolean = true },
  ["log.every"] = COUNT, ["checkpoint.every"] = COUNT0,
  ["loader.workers"] = { int = true, min = 0, max = 64 }, ["loader.prefetch"] = { int = true, min = 0, max = 64 },
  ["loader.augment_on"] = { oneof = { "auto", "cpu", "device" } },
  ["dist.slices"] = { oneof = { "shared", "per_rank" } }, ["dist.sync_bn"] = { boolean = true }, ["dist.timeout"] = { min = 0 },
  ["views.global.n"] = COUNT, ["views.global.size"] = VIEW_SIZE,
  ["views.local.n"] = COUNT0, ["views.local.size"] = VIEW_SIZE,
  ["eval.batch"] = COUNT, ["eval.probe_lr"] = { gt = 0 }, ["eval.probe_iters"] = COUNT,
  ["eval.probe_l2"] = { list = true, min = 0 }, ["eval.knn.k"] = COUNT, ["eval.knn.T"] = { gt = 0 },
}
M.rules = RULES

local function check_views(views)
  if type(views) ~= "table" then fail("views: expected a table like { global = { n = 2, pipeline = {...} } }, got %s", type(views)) end
  util.check_keys("vr.recipe: views", views, { "global", "local" })
  if not views.global then fail("views: a 'global' group is required") end
  for _, g in ipairs { "global", "local" } do
    local v = views[g]
    if v then
      util.with_defaults("vr.recipe: views." .. g, v, view_defaults)
      if type(v.pipeline) ~= "table" then fail("views.%s.pipeline: expected a list of augmentations", g) end
    end
  end
end

-- the recipe's component specs: {key path, spec, constructor name}
local function components(r)
  local out = {}
  local function add(path, s, family)
    if type(s) == "table" and type(s.kind) == "string" then out[#out + 1] = { path, s, family .. s.kind } end
  end
  add("data", r.data, "vr.data.")
  add("loss", r.loss, "vr.loss.")
  add("optim", r.optim, "vr.optim.")
  for _, g in ipairs { "global", "local" } do
    local v = type(r.views) == "table" and r.views[g]
    if type(v) == "table" and type(v.pipeline) == "table" then
      for i, s in ipairs(v.pipeline) do add(string.format("views.%s.pipeline.%d", g, i), s, "vr.augment.") end
    end
  end
  if type(r.schedule) == "table" then
    for _, k in ipairs(util.sorted_keys(r.schedule)) do add("schedule." .. tostring(k), r.schedule[k], "vr.schedule.") end
  end
  return out
end

-- The first value of r that breaks its rule: key path, message, and where the spec holding it was
-- made (file:line, for a component's value); nil when every value keeps its rule.
function M.problem(r)
  for _, path in ipairs(util.sorted_keys(RULES)) do
    local parent = path:match("^(.*)%.[^%.]+$")
    if not parent or type(util.at_path(r, parent)) == "table" then
      local p = util.rule_problem(util.at_path(r, path), RULES[path])
      if p then return path, "vr.recipe: " .. path .. ": " .. p end
    end
  end
  for _, c in ipairs(components(r)) do
    local rules = util.spec_rules[c[3]]
    local k, p
    if rules then k, p = util.check_rules(c[2], rules) end
    if k then return c[1] .. "." .. k, string.format("%s: %s: %s", c[3], k, p), util.spec_origin[c[2]] end
  end
end

-- the rule of the value at a key path (nil when it has none) and the name to report it under
function M.rule_for(r, path)
  if RULES[path] then return RULES[path], "vr.recipe" end
  for _, c in ipairs(components(r)) do
    local prefix = c[1] .. "."
    if path:sub(1, #prefix) == prefix then
      local rules = util.spec_rules[c[3]]
      return rules and rules[path:sub(#prefix + 1)], c[3]
    end
  end
end

-- The model is a function returning encoder, projector, or a table holding the model's numbers as
-- data beside a build(m) function that reads them, so that `--set model.width=32` and sweeps reach
-- architecture hyperparameters. Returns the function that builds it (nil when it is neither).
function M.model_builder(model)
  if util.is_callable(model) then return model end
  if type(model) == "table" and util.is_callable(model.build) then return function() return model.build(model) end end
end

-- the tables define has checked (a recipe file may return a plain table instead)
local defined = setmetatable({}, { __mode = "k" })

-- Checks a recipe table and fills its defaults (what vr.recipe{...} calls).
function M.define(r)
  if type(r) ~= "table" then fail("expected a table, got %s", type(r)) end
  local d = defaults()
  local allowed = {}
  for k in pairs(d) do allowed[#allowed + 1] = k end
  table.sort(allowed)
  util.check_keys("vr.recipe", r, allowed)
  for k, v in pairs(d) do
    if r[k] == nil then
      if v == REQUIRED then fail("the key '%s' is required", k) end
      r[k] = util.deepcopy(v)
    end
  end
  if not r.optim then r.optim = require("visreg.optim").adamw {} end
  r.eval = util.with_defaults("vr.recipe: eval", r.eval or {}, eval_defaults)
  r.log = util.with_defaults("vr.recipe: log", r.log, defaults().log)
  r.checkpoint = util.with_defaults("vr.recipe: checkpoint", r.checkpoint, defaults().checkpoint)
  r.loader = util.with_defaults("vr.recipe: loader", r.loader, defaults().loader)
  r.dist = util.with_defaults("vr.recipe: dist", r.dist, defaults().dist)
  if not M.model_builder(r.model) then
    fail("model: expected a function returning encoder, projector, or a table of the model's numbers with a build " ..
      "function (model = { width = 16, build = function(m) ... end }); got %s", type(r.model))
  end
  check_views(r.views)
  if type(r.schedule) ~= "table" then fail("schedule: expected a table of key = schedule, got %s", type(r.schedule)) end
  M.check(r)
  defined[r] = true
  return r
end

---------------------------------------------------------------- files
local function traceback(e)
  if os.getenv("VISREG_TRACEBACK") then return debug.traceback(tostring(e), 2) end
  return e
end

-- the line of source where key (a.b.c) is written, for errors whose recipe frame was lost to a
-- tail call (`return vr.recipe{...}`)
local function line_of_key(source, key)
  -- the first place outside a comment line where find(pattern) matches
  local function find(pattern, plain)
    local at = 1
    while true do
      local i = source:find(pattern, at, plain)
      if not i then return nil end
      local bol = (source:sub(1, i):match(".*\n()") or 1)
      if not source:sub(bol, i):match("^%s*%-%-") then return i end
      at = i + 1
    end
  end
  local at = key:find(".", 1, true) and find(key, true)
  if not at then
    local last = key:match("([%w_]+)$")
    at = last and find("%f[%w_]" .. last .. "%s*=")
  end
  if not at then return nil end
  local _, n = source:sub(1, at):gsub("\n", "")
  return n + 1
end

local function locate(msg, source, path)
  msg = tostring(msg)
  if msg:find(path .. ":", 1, true) then return msg end
  local key = msg:match("unknown key '([^']+)'") or msg:match("the key '([^']+)'") or msg:match("^vr%.recipe: ([%w_%.]+): ")
  local line = key and line_of_key(source, key)
  return string.format("%s:%s %s", path, line and (line .. ":") or "", msg)
end

-- the --set override of a key path, if one set it ("key=value")
local function override_of(overrides, path)
  local found
  for _, o in ipairs(overrides or {}) do
    local key = o:match("^%s*([^=]-)%s*=")
    if key == path then found = o end
  end
  return found
end

-- Checks a recipe after overrides: schedules name numbers, and every value keeps its rule
-- (M.problem). ctx = {path =, source =, overrides =} (the recipe file's): a refused value is
-- reported at the recipe's file:line (the line that made its spec, or where its key is written)
-- and with the --set that gave it. Without ctx (vr.recipe{...}), at the caller's line.
function M.check(r, ctx)
  for k, s in pairs(r.schedule) do
    if not schedule.is_schedule(s) then
      fail("schedule['%s']: expected vr.schedule.* or a function(epoch, step), got %s", tostring(k), type(s))
    end
    local path = schedule.resolve_key(k)
    local v = M.get(r, path)
    if type(v) ~= "number" then
      local near = {}
      for _, p in ipairs(M.paths(r)) do
        if type(M.get(r, p)) == "number" then near[#near + 1] = p end
      end
      fail("schedule: unknown key '%s' (a schedule needs a number in the recipe); nearest valid keys: %s", tostring(k),
        table.concat(util.nearest(path, near, 5), ", "))
    end
  end
  local path, msg, origin = M.problem(r)
  if not path then return r end
  if not ctx then
    if origin then error(origin .. ": " .. msg, 0) end
    util.error("%s", msg)
  end
  local where = origin
  if ctx.source and not (where and where:sub(1, #ctx.path + 1) == ctx.path .. ":") then
    local line = line_of_key(ctx.source, path)
    if line then where = ctx.path .. ":" .. line end
  end
  local set = override_of(ctx.overrides, path)
  error(string.format("%s%s%s", where and (where .. ": ") or (ctx.path .. ": "), msg, set and (" (--set " .. set .. ")") or ""), 0)
end

---------------------------------------------------------------- bases
-- A base is a recipe file that returns a plain table of recipe fields (the loss may be missing);
-- vr.recipe.extend(base, overrides) runs it, deep-merges overrides into it and checks the result.
-- The base's path is relative to the folder of the recipe file being loaded (or the working
-- directory outside one). The bases read while loading a recipe are bundled into the text load
-- returns (one line in front of the recipe's own, so its line numbers hold), so a run folder's
-- recipe.lua runs the same recipe however the base files change later.
local loading = { dir = nil, bundled = {}, read = {} }

-- merges over into base: tables of settings merge key by key; lists, components (tables with a
-- kind: losses, optimisers, augmentations), functions and other values replace
local function merge(base, over)
  for k, v in pairs(over) do
    local b = base[k]
    if type(v) == "table" and type(b) == "table" and v.kind == nil and getmetatable(v) == nil
      and not (util.is_array(v) and next(v) ~= nil) and not util.is_array(b) then
      merge(b, v)
    else
      base[k] = v
    end
  end
  return base
end
M.merge = merge

-- the bases a recipe's text carries: called by the first line of a bundled recipe
function M.bundle(bases)
  for k, v in pairs(bases) do loading.bundled[k] = v end
end

function M.extend(base, overrides)
  if type(base) ~= "string" then fail("extend: expected the path of a base recipe, got %s", type(base)) end
  if overrides ~= nil and type(overrides) ~= "table" then fail("extend: overrides: expected a table, got %s", type(overrides)) end
  local path = (base:sub(1, 1) == "/" or not loading.dir) and base or (loading.dir .. "/" .. base)
  local text = loading.bundled[base]
  if not text then
    text = util.read_file(path)
    if not text then fail("extend: cannot open the base recipe %s", path) end
    loading.read[#loading.read + 1] = { base, text }
  end
  local chunk, err = loadstring(text, "@" .. path)
  if not chunk then error(err, 0) end
  local ok, t = xpcall(chunk, traceback)
  if not ok then error(t, 0) end
  if type(t) ~= "table" then fail("extend: the base %s must return a table of recipe fields, got %s", path, type(t)) end
  return M.define(merge(setmetatable(t, nil), overrides or {}))
end

-- a Lua string literal of s on one line
local function one_line(s)
  return '"' .. s:gsub('[%z\1-\31"\\\127]', function(c) return string.format("\\%03d", c:byte()) end) .. '"'
end

-- source with the bases in read ({name, text} in reading order) bundled in front of its first line
local function bundled_source(source, read)
  if #read == 0 then return source end
  local parts = {}
  for _, b in ipairs(read) do parts[#parts + 1] = "[" .. one_line(b[1]) .. "] = " .. one_line(b[2]) end
  return 'require("visreg.recipe").bundle { ' .. table.concat(parts, ", ") .. " }; " .. source
end

-- Runs a recipe's source (chunk named path, so errors carry the recipe's file:line; the bases it
-- extends are found beside it), applies the overrides and checks the result.
function M.load_source(source, path, overrides)
  local chunk, err = loadstring(source, "@" .. path)
  if not chunk then error(err, 0) end
  local saved = loading
  loading = { dir = path:match("^(.*)/[^/]*$") or ".", bundled = {}, read = {} }
  local ok, r = xpcall(chunk, traceback)
  M.last_read, loading = loading.read, saved
  if not ok then error(locate(r, source, path), 0) end
  if type(r) ~= "table" then error(string.format("%s: the recipe must return vr.recipe{...}, got %s", path, type(r)), 0) end
  if not defined[r] then -- a plain table, not made by vr.recipe
    local ok2, e = pcall(M.define, r)
    if not ok2 then error(path .. ": " .. tostring(e), 0) end
  end
  if not r.name then r.name = path:match("([^/]+)%.lua$") or path end
  if getmetatable(r) ~= nil then r = setmetatable(r, nil) end
  M.apply_overrides(r, overrides)
  M.check(r, { path = path, source = source, overrides = overrides })
  return r
end

-- Runs a recipe file; returns the recipe table and its self-contained text (the file's, with the
-- bases it extends bundled in).
function M.load(path, overrides)
  local source = util.read_file(path)
  if not source then error("cannot open recipe " .. path, 0) end
  local r = M.load_source(source, path, overrides)
  return r, bundled_source(source, M.last_read)
end

util.boundaries[M.load_source] = true

-- the resolved recipe as JSON (functions named by their file:line)
function M.to_json(r) return util.json_encode(r, "  ") .. "\n" end

return M
