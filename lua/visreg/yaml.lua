-- visreg.yaml: YAML files (sweep grids, configuration) as Lua values. core/yaml.c parses and checks
-- the text (syntax, tabs, duplicate keys, limits; every error names FILE:LINE:COLUMN); this module
-- only turns its node tree into tables and resolves plain scalars by the YAML 1.2 core schema.
--
--   yaml.load(path), yaml.parse(text [, name])  the document's value (nil for an empty document);
--                                               a Lua error "FILE:LINE:COLUMN: what" on bad input
--   yaml.null                                   the value of `~`, `null` and empty plain scalars, so
--                                               that `key:` with nothing after it is not lost
--   yaml.keys(map)                              the map's keys in file order
--   yaml.where(t [, key])                       "FILE:LINE:COLUMN" of t itself, of a map's key (the
--                                               key, which is where a reader looks for it), or of
--                                               item i of a sequence; nil when unknown
--   yaml.kind(t)                                "map" or "seq" for a table read here (so that an
--                                               empty `{}` and `[]` can be told apart), else nil
--
-- Maps become tables keyed by the key's text (every key is a string, as in C keys are compared by
-- text), sequences become arrays. Quoted, block (| and >) and !!str scalars are always strings.
-- An alias gives the very table of its anchor (its positions are the anchor's too).
local ffi = require "ffi"
local core = require "visreg.core"
local util = require "visreg.util"
local C = core.C

local M = {}

M.null = setmetatable({}, {
  __tostring = function() return "null" end,
  __newindex = function() error("yaml.null is read-only", 2) end,
  __metatable = "yaml.null",
})

-- table -> { name, line, col, kind, keys (maps), lines, cols (per key or index) }; weak so that
-- the positions go when the table does
local info = setmetatable({}, { __mode = "k" })

local bools = { ["true"] = true, True = true, TRUE = true, ["false"] = false, False = false, FALSE = false }
local nulls = { [""] = true, ["~"] = true, null = true, Null = true, NULL = true }
local TWO53 = 2 ^ 53

-- digits in base 16 or 8, accumulated in a double: exact below 2^53, and at least 2^53 above it
local function based(digits, base)
  local v = 0
  for i = 1, #digits do v = v * base + tonumber(digits:sub(i, i), base) end
  return v
end

-- plain scalar s (node id of y, in file name) by the YAML 1.2 core schema
local function resolve(s, y, id, name)
  if nulls[s] then return M.null end
  local b = bools[s]
  if b ~= nil then return b end
  local sign, body = s:match("^([-+]?)(.*)$")
  local n
  if body:match("^%d+$") then
    n = tonumber(body)
  elseif sign == "" and s:match("^0x%x+$") then
    n = based(s:sub(3), 16)
  elseif sign == "" and s:match("^0o[0-7]+$") then
    n = based(s:sub(3), 8)
  end
  if n then
    -- a seed or a count silently rounded would be worse than an error
    if n >= TWO53 then
      util.error("%s:%d:%d: integer %s does not fit a Lua number exactly (|n| < 2^53)", name, C.vr_yaml_line(y, id),
        C.vr_yaml_column(y, id), s)
    end
    return sign == "-" and 0 - n or n
  end
  local mant = body:match("^(.-)[eE][-+]?%d+$") or body
  if mant:match("^%d+%.?%d*$") or mant:match("^%.%d+$") then return tonumber(s) end
  if body == ".inf" or body == ".Inf" or body == ".INF" then return sign == "-" and -math.huge or math.huge end
  if s == ".nan" or s == ".NaN" or s == ".NAN" then return 0 / 0 end
  return s
end

local function text(y, id) return ffi.string(C.vr_yaml_text(y, id), C.vr_yaml_length(y, id)) end

-- node id of document y as a Lua value; memo: node id -> table, so an alias shares its anchor's
-- table and conversion stays linear in the file's size (the C side caps nodes and aliases)
local function convert(y, id, name, memo)
  local kind = C.vr_yaml_kind(y, id)
  if kind == C.VR_YAML_SCALAR then
    local s = text(y, id)
    if C.vr_yaml_plain(y, id) == 0 then return s end
    return resolve(s, y, id, name)
  end
  if memo[id] then return memo[id] end
  local t = {}
  local meta = { name = name, line = C.vr_yaml_line(y, id), col = C.vr_yaml_column(y, id), lines = {}, cols = {} }
  memo[id], info[t] = t, meta
  local n = C.vr_yaml_size(y, id)
  if kind == C.VR_YAML_SEQ then
    meta.kind = "seq"
    for i = 0, n - 1 do
      local item = C.vr_yaml_item(y, id, i)
      meta.lines[i + 1], meta.cols[i + 1] = C.vr_yaml_line(y, item), C.vr_yaml_column(y, item)
      t[i + 1] = convert(y, item, name, memo)
    end
  else
    meta.kind, meta.keys = "map", {}
    for i = 0, n - 1 do
      local k = C.vr_yaml_key(y, id, i)
      local key = text(y, k)
      meta.keys[i + 1] = key
      meta.lines[key], meta.cols[key] = C.vr_yaml_line(y, k), C.vr_yaml_column(y, k)
      t[key] = convert(y, C.vr_yaml_item(y, id, i), name, memo)
    end
  end
  return t
end

local outp = ffi.new("vr_yaml *[1]")

-- the document's value; the handle is freed by the GC should the conversion raise an error
local function value_of(name)
  local y = ffi.gc(outp[0], C.vr_yaml_free)
  outp[0] = nil
  local root = C.vr_yaml_root(y)
  local v = root >= 0 and convert(y, root, name, {}) or nil
  C.vr_yaml_free(ffi.gc(y, nil))
  return v
end

-- a failed parse raises the file's own "FILE:LINE:COLUMN: what" (the C function and source line
-- that vr_last_error adds say nothing to the person who wrote the file)
local function check(st)
  if st ~= 0 then
    error((core.last_error():gsub("^vr_yaml_%w+: ", ""):gsub(" %(core/yaml%.c:%d+%)$", "")), 0)
  end
end

function M.parse(s, name)
  if type(s) ~= "string" then util.error("yaml.parse: expected the text as a string, got %s", type(s)) end
  name = name or "<string>"
  check(C.vr_yaml_parse(s, #s, name, outp))
  return value_of(name)
end

function M.load(path)
  if type(path) ~= "string" then util.error("yaml.load: expected a file name, got %s", type(path)) end
  check(C.vr_yaml_load(path, outp))
  return value_of(path)
end

function M.keys(t)
  local meta = info[t]
  if not meta or meta.kind ~= "map" then util.error("yaml.keys: expected a map read by visreg.yaml, got %s", type(t)) end
  local out = {}
  for i, k in ipairs(meta.keys) do out[i] = k end
  return out
end

function M.where(t, key)
  local meta = info[t]
  if not meta then return nil end
  if key == nil then return string.format("%s:%d:%d", meta.name, meta.line, meta.col) end
  local line = meta.lines[key]
  return line and string.format("%s:%d:%d", meta.name, line, meta.cols[key]) or nil
end

function M.kind(t)
  local meta = info[t]
  return meta and meta.kind
end

return M
