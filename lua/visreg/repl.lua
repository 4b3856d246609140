-- visreg.repl: the Lua half of `visreg repl` (tools/cmd_repl.c does the line editing, signals and
-- history, and calls these).
--
--   repl.start()              called once before the first input: notes the globals the session was
--                             given (vr, and r, trainer, enc, proj, ds with a run folder), defines
--                             help, and makes reading an unknown global from code typed at the
--                             prompt (or given with -e) an error with the nearest names
--   repl.eval(src [, chunkname [, final]])
--                             runs one input: "?NAME" shows a doc; an expression prints its values
--                             (a trailing ; prints nothing) and sets _ to the first; a statement runs.
--                             Returns "incomplete" when src needs more lines (unless final); raises
--                             the error otherwise. Code typed here runs without the JIT (options.jit)
--                             so that Ctrl-C (a count hook set by the host) stops any loop.
--   repl.complete(prefix)     the completions of the name that ends prefix (the line up to the
--                             cursor): globals and keywords, fields after `.`, methods after `:`
--                             (tables through their metatables' __index tables, tensors, strings);
--                             a metatable's __fields lists names that exist before they are loaded
--   repl.dofile(path)         runs a script (-i SCRIPT) the same way
--   repl.format(v)            v as the prompt prints it: tables nested, keys sorted, arrays inline,
--                             cut at options.depth levels and options.items entries
--   repl.help([x [, name]])   the overview, or the doc and the fields or methods of x
--
-- Words for the REPL are documented in visreg.doc, which help() lists.
local util = require "visreg.util"
local tensor = require "visreg.tensor"
local doc = require "visreg.doc"

local M = {}

M.options = {
  jit = false,  -- true: code typed at the prompt is JIT-compiled (faster loops that Ctrl-C may not stop)
  depth = 3,    -- nested tables printed this deep
  items = 20,   -- entries printed per table
  width = 100,  -- a table prints on one line when it fits
}

-- chunk names of the code that reads globals strictly (tools/cmd_repl.c uses them)
M.strict_sources = { ["=repl"] = true, ["=(command line)"] = true }

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }
local is_keyword = {}
for _, k in ipairs(KEYWORDS) do is_keyword[k] = true end

-- the globals of a bare interpreter (and the host's), not listed as loaded
local STANDARD = {}
for _, k in ipairs { "_G", "_VERSION", "arg", "assert", "bit", "collectgarbage", "coroutine", "debug", "dofile",
  "error", "gcinfo", "getfenv", "getmetatable", "io", "ipairs", "jit", "load", "loadfile", "loadstring", "math",
  "module", "newproxy", "next", "os", "package", "pairs", "pcall", "print", "rawequal", "rawget", "rawset",
  "require", "select", "setfenv", "setmetatable", "string", "table", "tonumber", "tostring", "type", "unpack",
  "xpcall", "VISREG_LUA_DIR", "VISREG_EXE", "help", "_" } do
  STANDARD[k] = true
end

local function is_ident(s) return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not is_keyword[s] end

---------------------------------------------------------------- pretty-printing
local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function quote(s)
  local cut = ""
  if #s > 200 then
    cut = string.format("...(%d chars)", #s)
    s = s:sub(1, 200)
  end
  return '"' .. s:gsub('[%c"\\]', function(c) return escapes[c] or string.format("\\%03d", c:byte()) end) .. '"' .. cut
end

local function fmt_number(x)
  if x ~= x or x == math.huge or x == -math.huge then return tostring(x) end
  if x == math.floor(x) and math.abs(x) < 1e15 then return string.format("%d", x) end
  return string.format("%.14g", x)
end

local function fn_summary(f)
  local e = doc.get(f)
  if e then return "function " .. e.sig end
  local info = debug.getinfo(f, "S")
  if info.what == "C" then return "builtin function" end
  return string.format("function (%s:%d)", info.short_src, info.linedefined)
end

local function tensor_summary(t)
  local extra = t:device() ~= "cpu" and (" on " .. t:device()) or ""
  if t:requires_grad() then extra = extra .. ", requires_grad" end
  return string.format("tensor(%s [%s]%s)", t:dtype(), table.concat(t:shape(), ", "), extra)
end

local function first_line(s) return (s:match("^([^\n]*)")) end
local function clip(s, n)
  s = first_line(s)
  return #s > n and (s:sub(1, n - 3) .. "...") or s
end

local format

local function format_table(t, depth, indent, seen)
  local mt = getmetatable(t)
  if type(mt) == "table" and mt.__tostring then
    local ok, s = pcall(tostring, t)
    s = ok and s or "<" .. tostring(s) .. ">"
    if depth > 0 and s:find("\n") then s = first_line(s) .. " ..." end
    return s
  end
  local e = depth > 0 and doc.get(t)
  if e and e.path then return "<" .. e.name .. ">" end
  if seen[t] then return "<cycle>" end
  local n = #t
  local keys = {}
  for k in pairs(t) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
  end
  if n == 0 and #keys == 0 then return "{}" end
  if depth >= M.options.depth then return string.format("{...%d}", n + #keys) end
  seen[t] = true
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  local parts, limit = {}, M.options.items
  local pad = string.rep("  ", indent + 1)
  for i = 1, n do
    if #parts >= limit then break end
    parts[#parts + 1] = format(t[i], depth + 1, indent + 1, seen)
  end
  for _, k in ipairs(keys) do
    if #parts >= limit then break end
    local ks = is_ident(k) and k or ("[" .. format(k, depth + 1, indent + 1, seen) .. "]")
    parts[#parts + 1] = ks .. " = " .. format(t[k], depth + 1, indent + 1, seen)
  end
  local more = n + #keys - #parts
  if more > 0 then parts[#parts + 1] = string.format("...(%d more)", more) end
  seen[t] = nil
  local inline = "{" .. table.concat(parts, ", ") .. "}"
  if not inline:find("\n") and #inline + 2 * indent <= M.options.width then return inline end
  return "{\n" .. pad .. table.concat(parts, ",\n" .. pad) .. "\n" .. string.rep("  ", indent) .. "}"
end

function format(v, depth, indent, seen)
  depth, indent, seen = depth or 0, indent or 0, seen or {}
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if tv == "number" then return fmt_number(v) end
  if tv == "table" then return format_table(v, depth, indent, seen) end
  if tv == "function" then return fn_summary(v) end
  if tv == "cdata" and tensor.is_tensor(v) then
    if v == nil then return "tensor(NULL)" end
    return depth == 0 and tostring(v) or tensor_summary(v)
  end
  return tostring(v)
end

-- v as the prompt prints it
function M.format(v) return format(v) end

-- sets _ to the first value and prints them all (strings as they are), unless quiet
function M.show(quiet, ...)
  local n = select("#", ...)
  if n == 0 then return end
  rawset(_G, "_", (...))
  if quiet then return end
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    parts[i] = type(v) == "string" and v or format(v)
  end
  io.write(table.concat(parts, "\t"), "\n")
  io.flush()
end

---------------------------------------------------------------- names
-- the value of field k of obj, looked up without raising (and without loading for a strict _G)
local function field(obj, k)
  local t = type(obj)
  if t == "table" then
    local v = rawget(obj, k)
    if v ~= nil then return v end
    local ok, r = pcall(function() return obj[k] end)
    if ok then return r end
    return nil
  elseif t == "cdata" and tensor.is_tensor(obj) then
    return rawget(tensor.methods, k)
  elseif t == "string" then
    return string[k]
  end
  return nil
end

-- the value at a dotted path of names from _G ("vr.nn.mlp"); nil when a part is missing
function M.resolve(path)
  local obj
  for part in path:gmatch("[^%.]+") do
    if obj == nil then obj = rawget(_G, part) else obj = field(obj, part) end
    if obj == nil then return nil end
  end
  return obj
end

local function is_callable(v)
  return type(v) == "function" or util.is_callable(v)
end

-- the names reachable from obj: its keys, its metatables' __fields and __index tables; methods:
-- callable values only
function M.fields(obj, methods)
  local names, found = {}, {}
  local function add(k, v)
    if not is_ident(k) or found[k] then return end
    if methods and v ~= nil and not is_callable(v) then return end
    if methods and v == nil then return end
    found[k] = true
    names[#names + 1] = k
  end
  local t = type(obj)
  if t == "cdata" and tensor.is_tensor(obj) then
    for k, v in pairs(tensor.methods) do add(k, v) end
  elseif t == "string" then
    for k, v in pairs(string) do add(k, v) end
  elseif t == "table" then
    local cur, hops = obj, 0
    while type(cur) == "table" and hops < 16 do
      for k, v in pairs(cur) do add(k, v) end
      local mt = getmetatable(cur)
      if type(mt) ~= "table" then break end
      if type(mt.__fields) == "table" then
        for k, v in pairs(mt.__fields) do
          local name = type(k) == "string" and k or v
          if not methods then add(name, true) end
        end
      end
      cur = rawget(mt, "__index")
      hops = hops + 1
    end
  end
  table.sort(names)
  return names
end

-- the global names, sorted
local function global_names()
  local names = {}
  for k in pairs(_G) do
    if is_ident(k) then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

function M.complete(prefix)
  prefix = prefix or ""
  local word = prefix:match("[%w_%.:]*$") or ""
  if word:match("^%d") or word:match("^[%.:]") then return {} end
  -- inside a string literal: nothing to complete
  local before = prefix:sub(1, #prefix - #word)
  local _, dq = before:gsub('"', "")
  local _, sq = before:gsub("'", "")
  if dq % 2 == 1 or sq % 2 == 1 then return {} end
  local base, sep, part = word:match("^(.-)([%.:])([%w_]*)$")
  local names, lead = {}, ""
  if not base then
    part = word
    names = global_names()
    for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
  else
    if base == "" or base:find(":", 1, true) or base:find("..", 1, true) then return {} end
    local obj = M.resolve(base)
    if obj == nil then return {} end
    names = M.fields(obj, sep == ":")
    lead = base .. sep
  end
  local out, seen = {}, {}
  local hidden = part:sub(1, 1) ~= "_"
  for _, k in ipairs(names) do
    if k:sub(1, #part) == part and not seen[k] and not (hidden and k:sub(1, 1) == "_") then
      seen[k] = true
      out[#out + 1] = lead .. k
    end
  end
  table.sort(out)
  return out
end

-- "unknown global 'enx'; did you mean 'enc'?"
function M.unknown_global(name)
  local hint = util.did_you_mean(tostring(name), global_names())
  return "unknown global '" .. tostring(name) .. "'" .. (hint and ("; " .. hint) or "")
end

---------------------------------------------------------------- help
local function out(...) io.write(...) end

-- words wrapped to the width after a label column
local function wrapped(label, words, col)
  col = col or 16
  local lines, line = {}, string.format("%-" .. col .. "s", label)
  local width = M.options.width
  for i, w in ipairs(words) do
    local piece = (i > 1 and " " or "") .. w
    if #line + #piece > width and #line > col then
      lines[#lines + 1] = line
      line = string.rep(" ", col) .. w
    else
      line = line .. piece
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n") .. "\n"
end

local function short(v)
  local s
  if type(v) == "table" then
    local e = doc.get(v)
    if e then s = first_line(e.text ~= "" and e.text or e.sig) end
  end
  if s then
    -- documented
  elseif type(v) == "table" then
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__tostring then
      local ok, r = pcall(tostring, v)
      s = ok and first_line(r) or "table"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) == "string" then keys[#keys + 1] = k end
      end
      table.sort(keys)
      s = "table" .. (#keys > 0 and (" {" .. table.concat(keys, ", ", 1, math.min(#keys, 8)) ..
        (#keys > 8 and ", ..." or "") .. "}") or "")
    end
  else
    s = first_line(format(v, 1))
  end
  if #s > 80 then s = s:sub(1, 77) .. "..." end
  return s
end

M.loaded = {} -- the globals the session started with (start())
M.words = {}  -- the documented words set as globals (listed under words:, not as yours)

local function overview()
  local vr = rawget(_G, "vr")
  out(string.format("visreg %s REPL\n", vr and vr.version or ""))
  local loaded, yours = {}, {}
  for _, k in ipairs(global_names()) do
    if M.loaded[k] then loaded[#loaded + 1] = k
    elseif not STANDARD[k] and not M.words[k] then yours[#yours + 1] = k end
  end
  if #loaded > 0 then
    out("loaded:\n")
    for _, k in ipairs(loaded) do out(string.format("  %-14s %s\n", k, clip(short(rawget(_G, k)), M.options.width - 17))) end
  end
  if #yours > 0 then out(wrapped("yours:", yours)) end
  if type(vr) == "table" then
    local mods = {}
    local fields = (getmetatable(vr) or {}).__fields or {}
    for k in pairs(fields) do mods[#mods + 1] = "vr." .. k .. (rawget(vr, k) and "" or "*") end
    table.sort(mods)
    out(wrapped("vr modules:", mods))
    out(string.rep(" ", 16) .. "(* not loaded yet: loads on first use)\n")
  end
  local groups, map = doc.groups()
  out("words:\n")
  for _, g in ipairs(groups) do
    local names = {}
    for _, e in ipairs(map[g]) do
      if e.path ~= g then names[#names + 1] = (e.path and e.path:match("[%.:]([%w_]+)$")) or e.name end
    end
    if #names > 0 and g ~= "modules" then out(wrapped("  " .. g, names, 18)) end
  end
  out("help(x) or ?x shows one (?vr.zeros, ?x:sum); Tab completes names; _ is the last result;\n" ..
    "a trailing ; prints nothing; Ctrl-C stops a computation or clears the line; Ctrl-D leaves.\n")
end

local function params(f)
  local info = debug.getinfo(f, "u")
  local names = {}
  for i = 1, info.nparams or 0 do names[i] = debug.getlocal(f, i) or ("a" .. i) end
  if info.isvararg then names[#names + 1] = "..." end
  return table.concat(names, ", ")
end

-- name: how x was written (nil when help(x) was called with a value)
local function describe(x, name)
  local label = name and (name .. ": ") or ""
  local e = doc.get(x)
  if not e and name then
    local recv, meth = name:match("^(.-):([%w_]+)$")
    if meth and tensor.is_tensor(M.resolve(recv)) then e = doc.lookup("tensor:" .. meth) end
    if not e and name:match("^vr[%.%w_]*$") then e = doc.lookup(name) end
  end
  if e then
    out(e.sig, "\n")
    if e.text ~= "" then out("  ", (e.text:gsub("\n", "\n  ")), "\n") end
  end
  local tx = type(x)
  if tx == "cdata" and tensor.is_tensor(x) then
    if not e then out(label, tensor_summary(x), "\n") end
    out(wrapped("methods:", M.fields(x, true), 10))
    out("(?", name or "x", ":NAME shows one)\n")
  elseif tx == "table" then
    local mt = getmetatable(x)
    local cls = type(mt) == "table" and rawget(mt, "__name")
    if not e then
      local s = short(x)
      out(label, cls and (cls .. " ") or "", s, "\n")
    end
    local keys, methods = {}, {}
    for k, v in pairs(x) do
      if is_ident(k) and k:sub(1, 1) ~= "_" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    local shown = 0
    for _, k in ipairs(keys) do
      if shown >= 60 then
        out(string.format("  ...(%d more)\n", #keys - shown))
        break
      end
      local v = rawget(x, k)
      local de = (type(v) == "function" or type(v) == "table") and doc.get(v)
      local line = de and de.sig:find("[%(%{]") and de.sig or short(v)
      out(string.format("  %-20s %s\n", k, clip(line, M.options.width - 23)))
      shown = shown + 1
    end
    if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
      local own = {}
      for _, k in ipairs(keys) do own[k] = true end
      for _, k in ipairs(M.fields(x, true)) do
        if not own[k] and k:sub(1, 1) ~= "_" then methods[#methods + 1] = k end
      end
      if #methods > 0 then out(wrapped("methods:", methods, 10)) end
    end
    if type(mt) == "table" and type(mt.__fields) == "table" then
      local lazy = {}
      for k in pairs(mt.__fields) do
        if rawget(x, k) == nil then lazy[#lazy + 1] = k end
      end
      table.sort(lazy)
      if #lazy > 0 then out(wrapped("on first use:", lazy, 14)) end
    end
  elseif tx == "function" then
    if not e then
      local info = debug.getinfo(x, "S")
      if info.what == "C" then out(label, "builtin function\n")
      else
        out(string.format("%s(%s)\n  defined at %s:%d (no doc)\n", name or "function", params(x), info.short_src,
          info.linedefined))
      end
    end
  elseif not e then
    out(label, format(x), "\n")
  end
end

-- help(): the overview; help(x [, name]): x's doc and its fields or methods
function M.help(...)
  if select("#", ...) == 0 then return overview() end
  local x, name = ...
  if x == nil then
    out((name or "nil") .. ": nil\n")
    return
  end
  describe(x, name)
end

-- ?NAME: NAME a path ("vr.nn.mlp", "x:sum") or any expression
function M.help_name(name)
  name = name:match("^%s*(.-)%s*$")
  if name == "" then return overview() end
  local recv, meth = name:match("^([%a_][%w_%.]*):([%a_][%w_]*)$")
  if recv then
    local obj = M.resolve(recv)
    if obj == nil then error(M.unknown_global(recv:match("^[^%.]+")) .. "", 0) end
    local f = field(obj, meth)
    if f == nil then
      local hint = util.did_you_mean(meth, M.fields(obj, true))
      error(string.format("%s has no method '%s'%s", recv, meth, hint and ("; " .. hint) or ""), 0)
    end
    return describe(f, name)
  end
  if name:match("^[%a_][%w_]*[%w_%.]*$") then
    local v = M.resolve(name)
    if v == nil then
      local root = name:match("^[^%.]+")
      if rawget(_G, root) == nil then error(M.unknown_global(root), 0) end
      out(name, ": nil\n")
      return
    end
    return describe(v, name)
  end
  local f, err = loadstring("return " .. name, "=repl")
  if not f then error(err, 0) end
  return describe(f(), name)
end

---------------------------------------------------------------- evaluation
local function identity(...) return ... end

function M.eval(src, chunkname, final)
  chunkname = chunkname or "=repl"
  local q = src:match("^%s*%?(.*)$")
  if q then return M.help_name(q) end
  local body, semi = src:match("^(.-)%s*(;?)%s*$")
  local quiet = semi == ";"
  -- an expression: its values go through the chunk's first argument (identity), so that a call
  -- in it is no tail call and an error in it still names the prompt's line
  -- (a comment at the end would swallow the closing parenthesis: it goes on a line of its own)
  local close = body:find("--", 1, true) and "\n)" or ")"
  local fn = loadstring("return (...)(" .. body .. close, chunkname)
  if not fn then
    local err
    fn, err = loadstring(src, chunkname)
    if not fn then
      if not final and err:find("'<eof>'$") then return "incomplete" end
      error(err, 0)
    end
  end
  if not M.options.jit and jit then jit.off(fn, true) end
  return M.show(quiet, fn(identity))
end

-- runs a script (-i SCRIPT) as typed code: without the JIT, so that Ctrl-C stops its loops
function M.dofile(path)
  local fn, err = loadfile(path)
  if not fn then error(err, 0) end
  if not M.options.jit and jit then jit.off(fn, true) end
  fn()
end

-- reading an unknown global from code typed at the prompt raises; library code and scripts
-- still read nil
local function strict_globals()
  local mt = getmetatable(_G)
  if mt == nil then
    mt = {}
    setmetatable(_G, mt)
  end
  if rawget(mt, "__repl_strict") then return end
  local prev = rawget(mt, "__index")
  mt.__repl_strict = true
  mt.__index = function(t, k)
    if prev ~= nil then
      local v
      if type(prev) == "function" then v = prev(t, k) else v = prev[k] end
      if v ~= nil then return v end
    end
    local info = debug.getinfo(2, "S")
    if info and M.strict_sources[info.source] then error(M.unknown_global(k), 2) end
    return nil
  end
end

function M.start()
  for k in pairs(_G) do
    if is_ident(k) and not STANDARD[k] then M.loaded[k] = true end
  end
  rawset(_G, "help", M.help)
  local probing = require "visreg.probing" -- the probing words (help() lists them under "probe")
  probing.install(_G)
  for _, w in ipairs(probing.WORDS) do M.words[w.name] = true end
  strict_globals()
end

doc.add(M.help, "help([x])", "help() lists what is loaded (the session's globals, vr and its modules) and the documented\n" ..
  "words; help(x) shows the doc of x (a function, module, class or value) and its fields or methods.\n" ..
  "At the prompt, ?NAME does the same (?vr.zeros, ?x:sum).", { group = "repl" })

return M
