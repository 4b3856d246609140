-- visreg.util: errors that point at the caller's file:line, table helpers, edit distance and a
-- small JSON encoder/decoder (metrics.jsonl, summary.json, the resolved recipe).
local M = {}

-- the folder of the library's own files: frames there are skipped when blaming a line
local LIBDIR = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
M.libdir = LIBDIR

local function in_library(src)
  return src:sub(1, 1) == "@" and src:sub(2, #LIBDIR + 1) == LIBDIR
end

-- Functions that run user code (the recipe loader): when the walk up the stack reaches one, the
-- user's frame was lost to a tail call, and the error gets no position (the caller adds one).
M.boundaries = {}

-- The stack level (for error()) of the first caller outside the library, or fallback.
function M.user_level(fallback)
  local level = 2
  while true do
    local info = debug.getinfo(level + 1, "Sf")
    if not info then return fallback or 2 end
    if M.boundaries[info.func] then return 0 end
    if info.what ~= "C" and not in_library(info.source) then return level end
    level = level + 1
  end
end

-- Raises msg at the first file:line outside the library (the recipe or script that called in).
function M.error(msg, ...)
  if select("#", ...) > 0 then msg = string.format(msg, ...) end
  error(msg, M.user_level(2))
end

-- The file:line of the first caller outside the library (nil when there is none), for messages
-- about values made there.
function M.user_where()
  local level = M.user_level(-1)
  if level <= 0 then return nil end
  local info = debug.getinfo(level, "Sl")
  if not info or info.currentline < 1 then return nil end
  local src = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
  return src .. ":" .. info.currentline
end

function M.is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

function M.deepcopy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[M.deepcopy(k, seen)] = M.deepcopy(x, seen) end
  return setmetatable(out, getmetatable(v))
end

function M.sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    return a < b
  end)
  return ks
end

function M.is_array(t)
  if type(t) ~= "table" then return false end
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end

-- Levenshtein distance between two strings
function M.edit_distance(a, b)
  local la, lb = #a, #b
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = (ca == b:byte(j)) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end

-- the n candidates nearest to word (edit distance, then alphabetical)
function M.nearest(word, candidates, n)
  local scored = {}
  for _, c in ipairs(candidates) do
    scored[#scored + 1] = { c, M.edit_distance(word, c) }
  end
  table.sort(scored, function(x, y)
    if x[2] ~= y[2] then return x[2] < y[2] end
    return x[1] < y[1]
  end)
  local out = {}
  for i = 1, math.min(n or 3, #scored) do out[i] = scored[i][1] end
  return out
end

-- "did you mean 'a', 'b' or 'c'?" for the (at most n, default 3) candidates nearest to word, within
-- max_dist edits (default 1 for words of up to 4 letters, 2 up to 8, else 3); nil when none is that near
function M.did_you_mean(word, candidates, n, max_dist)
  max_dist = max_dist or (#word <= 4 and 1 or #word <= 8 and 2 or 3)
  local near = {}
  for _, c in ipairs(M.nearest(word, candidates, n or 3)) do
    if c ~= word and M.edit_distance(word, c) <= max_dist then near[#near + 1] = "'" .. c .. "'" end
  end
  if #near == 0 then return nil end
  local list = #near == 1 and near[1] or (table.concat(near, ", ", 1, #near - 1) .. " or " .. near[#near])
  return "did you mean " .. list .. "?"
end

-- Checks that t has only keys from the allowed list; raises at the user's line otherwise.
function M.check_keys(what, t, allowed)
  local set = {}
  for _, k in ipairs(allowed) do set[k] = true end
  for k in pairs(t) do
    if type(k) == "string" and not set[k] then
      M.error("%s: unknown key '%s' (nearest valid keys: %s)", what, k,
        table.concat(M.nearest(k, allowed, 3), ", "))
    end
  end
end

-- Fills t's missing keys from defaults (deep-copied), checks unknown keys; returns t.
function M.with_defaults(what, t, defaults, extra_allowed)
  t = t or {}
  if type(t) ~= "table" then M.error("%s: expected a table of options, got %s", what, type(t)) end
  local allowed = {}
  for k in pairs(defaults) do allowed[#allowed + 1] = k end
  for _, k in ipairs(extra_allowed or {}) do allowed[#allowed + 1] = k end
  table.sort(allowed)
  M.check_keys(what, t, allowed)
  for k, v in pairs(defaults) do
    if t[k] == nil then t[k] = M.deepcopy(v) end
  end
  return t
end

---------------------------------------------------------------- value rules
-- A rule says which values a setting may take; a component's rules sit beside its defaults
-- (M.spec) and the recipe's own in visreg.recipe. Fields: min, max (inclusive bounds), gt, lt
-- (exclusive), int (whole numbers), optional (false also allowed: "not set"), pair (a number or
-- {low, high} with low <= high, both within the bounds), list (a number or a non-empty list of
-- numbers, each within the bounds; empty = true allows {}), size (an image size: an integer or
-- {h, w}, each 1..4096), oneof (a list of allowed values), boolean, test (a function of the
-- value and relaxed (see relax), with desc saying what it wants). Numbers must be finite whatever
-- the rule.
local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end

local function number_ok(x, r)
  if not finite(x) then return false end
  if r.int and x % 1 ~= 0 then return false end
  if r.min and x < r.min then return false end
  if r.max and x > r.max then return false end
  if r.gt and x <= r.gt then return false end
  if r.lt and x >= r.lt then return false end
  return true
end

-- the rule for values set while training (schedules): exclusive bounds may be reached (a learning
-- rate decayed to 0) and whole numbers may be fractional (their user rounds them)
local function relax(r)
  local c = {}
  for k, v in pairs(r) do c[k] = v end
  if c.gt then c.min, c.gt = math.max(c.min or c.gt, c.gt), nil end
  if c.lt then c.max, c.lt = math.min(c.max or c.lt, c.lt), nil end
  c.int = nil
  return c
end

local function fmt_num(x)
  if x == math.huge then return "inf" end
  if x == -math.huge then return "-inf" end
  if x ~= x then return "nan" end
  return string.format("%.10g", x)
end

local function bounds(r)
  local lo = r.min and { "[", r.min } or r.gt and { "(", r.gt }
  local hi = r.max and { r.max, "]" } or r.lt and { r.lt, ")" }
  if lo and hi then return string.format(" in %s%s, %s%s", lo[1], fmt_num(lo[2]), fmt_num(hi[1]), hi[2]) end
  if lo then return string.format(" %s %s", lo[1] == "[" and ">=" or ">", fmt_num(lo[2])) end
  if hi then return string.format(" %s %s", hi[2] == "]" and "<=" or "<", fmt_num(hi[1])) end
  return ""
end

local function number_desc(r)
  local noun = r.int and "integer" or "number"
  if not r.max and not r.lt then
    if (r.int and r.min == 1) or r.gt == 0 then return "a positive " .. noun end
    if r.min == 0 then return "a non-negative " .. noun end
  end
  local b = bounds(r)
  if b == "" then return r.int and "an integer" or "a finite number" end
  return (r.int and "an " or "a ") .. noun .. b
end

function M.rule_desc(r)
  local d
  if r.desc then d = r.desc
  elseif r.oneof then
    local names = {}
    for i, v in ipairs(r.oneof) do names[i] = tostring(v) end
    d = table.concat(names, ", ", 1, #names - 1) .. " or " .. names[#names]
  elseif r.boolean then d = "true or false"
  elseif r.size then d = "an image size (an integer in [1, 4096] or {h, w})"
  elseif r.pair then d = "a number or {low, high} with low <= high, each" .. (bounds(r) ~= "" and bounds(r) or " finite")
  elseif r.list then
    d = (r.empty and "a list of numbers" or "a number or a list of numbers") .. ", each" ..
      (bounds(r) ~= "" and bounds(r) or " finite")
  else d = number_desc(r) end
  if r.optional then d = "false or " .. d end
  return d
end

local function show(v)
  if type(v) == "number" then return fmt_num(v) end
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local ok, s = pcall(M.json_encode, v)
    if ok and #s <= 60 then return s end
    return "a table"
  end
  local s = tostring(v)
  if #s > 60 then return "a " .. type(v) .. " value" end
  return s
end
M.show_value = show

-- nil when v keeps rule r, else "expected ..., got ..."
function M.rule_problem(v, r, relaxed)
  local ok
  if relaxed then r = relax(r) end
  if r.optional and (v == false or v == nil) then return nil end
  if r.test then ok = r.test(v, relaxed)
  elseif r.oneof then
    ok = false
    for _, x in ipairs(r.oneof) do if v == x then ok = true end end
  elseif r.boolean then ok = type(v) == "boolean"
  elseif r.size then
    local size = { int = true, min = 1, max = 4096 }
    ok = number_ok(v, size) or (type(v) == "table" and #v == 2 and number_ok(v[1], size) and number_ok(v[2], size))
  elseif r.pair then
    ok = number_ok(v, r) or (type(v) == "table" and M.is_array(v) and #v == 2 and number_ok(v[1], r) and
      number_ok(v[2], r) and v[1] <= v[2])
  elseif r.list then
    ok = (not r.empty and number_ok(v, r)) or (type(v) == "table" and M.is_array(v) and (#v > 0 or r.empty))
    if ok and type(v) == "table" then
      for _, x in ipairs(v) do if not number_ok(x, r) then ok = false end end
    end
  else ok = number_ok(v, r) end
  if ok then return nil end
  return string.format("expected %s, got %s", M.rule_desc(r), show(v))
end

-- the value at a dotted key path of t ("weights.scale")
local function at_path(t, path)
  for part in path:gmatch("[^%.]+") do
    if type(t) ~= "table" then return nil end
    t = t[tonumber(part) or part]
  end
  return t
end
M.at_path = at_path

-- the first key (in sorted order) of rules whose value in t breaks its rule: key, problem
function M.check_rules(t, rules, relaxed)
  for _, k in ipairs(M.sorted_keys(rules)) do
    local p = M.rule_problem(at_path(t, k), rules[k], relaxed)
    if p then return k, p end
  end
end

-- each constructor's rules by name ("vr.loss.visreg"), for the recipe's checks after --set, and
-- where each spec was made (file:line, for their messages); kept weakly
M.spec_rules = {}
M.spec_origin = setmetatable({}, { __mode = "k" })

-- A component spec (recipe data): t's options checked against defaults and filled in, kind set,
-- and its values checked against rules (key -> rule, beside the defaults). what names the
-- constructor in messages ("vr.loss.visreg"), which point at the line that made the spec.
function M.spec(what, kind, t, defaults, rules)
  t = M.with_defaults(what, t or {}, defaults)
  t.kind = kind
  if rules then
    M.spec_rules[what] = rules
    local k, p = M.check_rules(t, rules)
    if k then M.error("%s: %s: %s", what, k, p) end
  end
  M.spec_origin[t] = M.user_where()
  return t
end

---------------------------------------------------------------- JSON
local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
  ['\r'] = '\\r', ['\t'] = '\\t' }
local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_number(x)
  if x ~= x then return "null" end
  if x == math.huge then return "1e999" end
  if x == -math.huge then return "-1e999" end
  if x % 1 == 0 and math.abs(x) < 2 ^ 53 then return string.format("%d", x) end
  return string.format("%.10g", x)
end

-- Encodes v; functions and other non-data values become strings naming them. indent: nil for one line.
function M.json_encode(v, indent, prefix, seen)
  prefix = prefix or ""
  seen = seen or {}
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then return json_number(v) end
  if t == "string" then return json_string(v) end
  if t == "cdata" then
    local n = tonumber(v)
    if n then return json_number(n) end
    return json_string(tostring(v))
  end
  if t == "function" then
    local info = debug.getinfo(v, "S")
    return json_string(string.format("<function %s:%d>", info.short_src, info.linedefined))
  end
  if t ~= "table" then return json_string("<" .. tostring(v) .. ">") end
  if seen[v] then return json_string("<cycle>") end
  seen[v] = true
  local nl, ind, sep = "", "", ","
  if indent then nl = "\n"; ind = prefix .. indent; sep = "," end
  local parts = {}
  local out
  if M.is_array(v) and (next(v) ~= nil or not getmetatable(v)) then
    for i = 1, #v do parts[i] = ind .. M.json_encode(v[i], indent, ind, seen) end
    if #parts == 0 then out = "[]" else out = "[" .. nl .. table.concat(parts, sep .. nl) .. nl .. (indent and prefix or "") .. "]" end
  else
    for _, k in ipairs(M.sorted_keys(v)) do
      local x = v[k]
      if type(k) ~= "string" and type(k) ~= "number" then goto continue end
      if type(k) == "string" and k:sub(1, 1) == "_" then goto continue end -- private fields
      parts[#parts + 1] = ind .. json_string(tostring(k)) .. (indent and ": " or ":") .. M.json_encode(x, indent, ind, seen)
      ::continue::
    end
    if #parts == 0 then out = "{}" else out = "{" .. nl .. table.concat(parts, sep .. nl) .. nl .. (indent and prefix or "") .. "}" end
  end
  seen[v] = nil
  return out
end

function M.json_decode(s)
  local pos = 1
  local function fail(msg) error(string.format("json: %s at offset %d", msg, pos), 0) end
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = s:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1; break end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
        if map[e] then out[#out + 1] = map[e]; pos = pos + 2
        elseif e == "u" then
          local code = tonumber(s:sub(pos + 2, pos + 5), 16) or fail("bad \\u escape")
          if code < 128 then out[#out + 1] = string.char(code)
          elseif code < 2048 then out[#out + 1] = string.char(192 + math.floor(code / 64), 128 + code % 64)
          else out[#out + 1] = string.char(224 + math.floor(code / 4096), 128 + math.floor(code / 64) % 64, 128 + code % 64) end
          pos = pos + 6
        else fail("bad escape") end
      else
        out[#out + 1] = c; pos = pos + 1
      end
    end
    return table.concat(out)
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1; ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str(); ws()
        if s:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value(); ws()
        local d = s:sub(pos, pos); pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local t = {}
      pos = pos + 1; ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value(); ws()
        local d = s:sub(pos, pos); pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then return str()
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4; return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then fail("unexpected character '" .. c .. "'") end
      pos = pos + #num
      return tonumber(num) or fail("bad number")
    end
  end
  local v = value(); ws()
  if pos <= #s then fail("trailing characters") end
  return v
end

---------------------------------------------------------------- files
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- writes through a temporary file and a rename, so a crash never leaves half a file
function M.write_file(path, s)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then M.error("cannot write %s: %s", path, err) end
  f:write(s)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then M.error("cannot write %s: %s", path, rerr) end
end

-- a JSON file's table (an object or array); nil when the file is missing, unreadable or not JSON
function M.read_json(path)
  local s = M.read_file(path)
  if not s then return nil end
  local ok, v = pcall(M.json_decode, s)
  if ok and type(v) == "table" then return v end
  return nil
end

-- the same through a temporary file of this process's own: several processes may rewrite one file
-- at once (Slurm tasks sharing a sweep folder, a sweep's page) and a reader sees one whole version
M.pid = tonumber((M.read_file("/proc/self/stat") or ""):match("^(%d+)")) or 0 -- /proc/self: the opener
function M.write_shared(path, s)
  local tmp = string.format("%s.%d.tmp", path, M.pid)
  local f, err = io.open(tmp, "wb")
  if not f then M.error("cannot write %s: %s", path, err) end
  f:write(s)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then os.remove(tmp); M.error("cannot write %s: %s", path, rerr) end
  return #s
end

function M.file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close(); return true end
  return false
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.shell_quote = shell_quote

function M.mkdir_p(path)
  local ok = os.execute("mkdir -p " .. shell_quote(path))
  if ok ~= 0 and ok ~= true then M.error("cannot create the folder %s", path) end
end

-- the names in a folder (without . and ..); {} when it cannot be read
function M.list_dir(path)
  local out = {}
  local p = io.popen("ls -A " .. shell_quote(path) .. " 2>/dev/null")
  if not p then return out end
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  return out
end

-- moves a file or folder (within one file system)
function M.rename(from, to)
  local ok, err = os.rename(from, to)
  if not ok then M.error("cannot move %s to %s: %s", from, to, tostring(err)) end
end

function M.is_dir(path)
  local f = io.open(path .. "/.", "rb")
  if f then f:close(); return true end
  return os.execute("test -d " .. shell_quote(path)) == 0
end

return M
