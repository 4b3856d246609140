-- visreg.yaml: scalar resolution (YAML 1.2 core schema), maps and sequences, key order, positions
-- (where), shared alias tables, and errors raised as Lua errors with FILE:LINE:COLUMN
local tap = require "tap"
local vr = require "visreg"
local yaml = vr.yaml
local null = yaml.null

-- every form of plain scalar, and the same text quoted
local forms = {
  { "null", null }, { "Null", null }, { "NULL", null }, { "~", null }, { "", null },
  { "true", true }, { "True", true }, { "TRUE", true }, { "false", false }, { "False", false }, { "FALSE", false },
  { "0", 0 }, { "42", 42 }, { "-17", -17 }, { "+8", 8 }, { "007", 7 }, { "0x1F", 31 }, { "0xff", 255 },
  { "0o17", 15 }, { "9007199254740991", 2 ^ 53 - 1 },
  { "1.5", 1.5 }, { "1.0e-3", 1e-3 }, { "1e-4", 1e-4 }, { "1E4", 1e4 }, { ".5", 0.5 }, { "-.5", -0.5 },
  { "+1.", 1 }, { "5.e3", 5000 }, { "-2.5E+2", -250 },
  { ".inf", math.huge }, { ".Inf", math.huge }, { "+.INF", math.huge }, { "-.inf", -math.huge },
  -- not numbers, booleans or nulls in YAML 1.2: strings
  { "yes", "yes" }, { "no", "no" }, { "on", "on" }, { "tRUE", "tRUE" }, { "nulls", "nulls" },
  { "1_000", "1_000" }, { "0b101", "0b101" }, { "-0x10", "-0x10" }, { "0x", "0x" }, { "0o8", "0o8" },
  { "1.2.3", "1.2.3" }, { ".", "." }, { "e5", "e5" }, { "1e", "1e" }, { "inf", "inf" }, { "nan", "nan" },
  { "+.nan", "+.nan" }, { "0x1p4", "0x1p4" }, { "12abc", "12abc" }, { "1:30", "1:30" },
  { "../fmnist_visreg.lua", "../fmnist_visreg.lua" }, { "lambda-slices", "lambda-slices" },
}
for _, f in ipairs(forms) do
  local text, want = f[1], f[2]
  local got = yaml.parse("v: " .. text .. "\n").v
  tap.ok(got == want and type(got) == type(want), string.format("plain %q is %s", text, tostring(want)),
    string.format("got %s (%s)", tostring(got), type(got)))
  if text ~= "" then
    tap.eq(yaml.parse("v: '" .. text .. "'\n").v, text, string.format("quoted '%s' is a string", text))
  end
end
local nan = yaml.parse("v: .nan\n").v
tap.ok(nan ~= nan, ".nan is NaN")
tap.ok(1 / yaml.parse("v: -0.0\n").v < 0, "-0.0 keeps its sign")
tap.eq(yaml.parse("v: !!str 12\n").v, "12", "!!str 12 is a string")
tap.eq(yaml.parse("v: \"true\"\n").v, "true", "a double-quoted true is a string")
tap.eq(yaml.parse("v: |\n  12\n").v, "12\n", "a literal block is a string")
tap.eq(yaml.parse("v: \"a\\0b\"\n").v, "a\0b", "a string may hold a NUL byte")
tap.eq(yaml.parse("42"), 42, "a scalar document")
tap.eq(yaml.parse("~"), null, "a null document")
tap.eq(yaml.parse(""), nil, "an empty document is nil")
tap.eq(yaml.parse("# just a comment\n"), nil, "a comment-only document is nil")
tap.eq(tostring(null), "null", "yaml.null prints as null")
tap.raises(function() null.x = 1 end, "read-only", "yaml.null cannot be written to")

-- a sweep file
local sweep = [[
recipe: ../fmnist_visreg.lua          # relative to this file
name: lambda-slices
set: { epochs: 2 }
grid:
  loss.lambda: [0.4, 0.6, 0.8]
  loss.slices: [256, 1024]
random:
  n: 8
  seed: 0
  params:
    optim.lr: { loguniform: [1.0e-4, 1.0e-2] }
seeds: [0, 1, 2]
notes:
]]
local t = yaml.parse(sweep, "grid.yaml")
tap.eq(t.recipe, "../fmnist_visreg.lua", "a path stays a string")
tap.eq(t.set.epochs, 2, "flow map")
tap.eq(t.grid["loss.lambda"][2], 0.6, "dotted keys are plain keys")
tap.eq(#t.grid["loss.slices"], 2, "sequences are arrays")
tap.eq(t.random.params["optim.lr"].loguniform[1], 1e-4, "1.0e-4 is a float")
tap.eq(t.random.seed, 0, "nested map")
tap.eq(t.notes, null, "a key without value is yaml.null, not lost")
tap.eq(table.concat(yaml.keys(t), ","), "recipe,name,set,grid,random,seeds,notes", "keys in file order")
tap.eq(table.concat(yaml.keys(t.grid), ","), "loss.lambda,loss.slices", "nested keys in file order")
local ks = yaml.keys(t)
ks[1] = "changed"
tap.eq(yaml.keys(t)[1], "recipe", "yaml.keys returns a copy")
tap.eq(yaml.kind(t.set), "map", "kind of a map")
tap.eq(yaml.kind(t.seeds), "seq", "kind of a sequence")
tap.eq(yaml.kind({}), nil, "kind of another table")
tap.eq(yaml.kind(yaml.parse("a: {}\nb: []\n").a), "map", "an empty map is told from an empty sequence")
tap.raises(function() yaml.keys(t.seeds) end, "yaml.keys: expected a map read by visreg.yaml", "keys of a sequence")
tap.raises(function() yaml.keys({}) end, "expected a map", "keys of another table")

-- positions
tap.eq(yaml.where(t), "grid.yaml:1:1", "where of the document's map")
tap.eq(yaml.where(t, "seeds"), "grid.yaml:12:1", "where(map, key) is the key's position")
tap.eq(yaml.where(t.grid, "loss.slices"), "grid.yaml:6:3", "where of a nested key")
tap.eq(yaml.where(t.grid["loss.lambda"]), "grid.yaml:5:16", "where of a flow sequence")
tap.eq(yaml.where(t.grid["loss.lambda"], 3), "grid.yaml:5:27", "where(list, i) is item i's position")
tap.eq(yaml.where(t.random.params["optim.lr"], "loguniform"), "grid.yaml:11:17", "where inside a flow map")
tap.eq(yaml.where(t, "missing"), nil, "where of an absent key is nil")
tap.eq(yaml.where({}), nil, "where of another table is nil")
tap.eq(yaml.where(yaml.parse("a: 1\n"), "a"), "<string>:1:1", "the default name is <string>")

-- aliases: the anchor's own table
local a = yaml.parse("base: &b {lr: 0.1}\none: *b\nlist: [*b, *b]\n")
tap.ok(a.one == a.base and a.list[1] == a.base and a.list[2] == a.base, "an alias gives the anchor's table")
tap.eq(yaml.where(a.one), "<string>:1:7", "an alias's table has the anchor's position")
-- a billion laughs is 80 references to shared tables, made in no time
local doc = { "a: &a [x, x, x, x, x, x, x, x, x, x]" }
for l = 1, 8 do
  local p, c = string.char(96 + l), string.char(97 + l)
  doc[#doc + 1] = string.format("%s: &%s [%s]", c, c, ("*" .. p .. ", "):rep(9) .. "*" .. p)
end
local t0 = os.clock()
local lol = yaml.parse(table.concat(doc, "\n"))
tap.ok(lol.i[1][1][1][1][1][1][1][1][10] == "x" and lol.i[1] == lol.i[10], "nested aliases share tables")
tap.ok(os.clock() - t0 < 1, "a billion laughs costs nothing")

-- errors: Lua errors with FILE:LINE:COLUMN
local function fails(text, needle, what)
  tap.raises(function() yaml.parse(text, "bad.yaml") end, needle, what)
end
fails("a:\n\tb: 1\n", "bad.yaml:2:1: a tab character: YAML indents with spaces", "tab indentation")
fails("a: 1\nb: 2\na: 3\n", "bad.yaml:3:1: duplicate key 'a' (first at line 1)", "duplicate key")
fails("x: [1, 2\n", "bad.yaml:2:1: did not find expected ',' or ']'", "unclosed flow sequence")
fails("a:\n    b: 1\n  c: 2\n", "bad.yaml:3:3: did not find expected key", "bad indentation")
fails("a: 1\n---\nb: 2\n", "bad.yaml:2:1: a second document", "two documents")
fails("? [1]\n: x\n", "bad.yaml:1:3: a map key must be a scalar, got a sequence", "a sequence as key")
fails("a: *x\n", "bad.yaml:1:4: unknown alias '*x'", "unknown alias")
fails("a: &r [*r]\n", "bad.yaml:1:8: the alias '*r' is inside the node it names", "recursive alias")
fails("a: !!float 1\n", "bad.yaml:1:4: the tag '!!float' is not supported", "unsupported tag")
fails(("["):rep(65), "bad.yaml:1:65: nested deeper than 64 levels", "nesting limit")
fails("seed: 12345678901234567890\n", "bad.yaml:1:7: integer 12345678901234567890 does not fit a Lua number exactly",
  "an integer past 2^53 is not rounded silently")
fails("n: 0x20000000000000\n", "bad.yaml:1:4: integer 0x20000000000000 does not fit", "a hex integer past 2^53")
tap.raises(function() yaml.parse(nil) end, "yaml.parse: expected the text as a string, got nil", "parse needs text")
-- the message is the file's own: no C function or source line in front or behind
local ok, err = pcall(yaml.parse, "a: 1\na: 2\n", "bad.yaml")
tap.eq(err, "bad.yaml:2:1: duplicate key 'a' (first at line 1)", "an error reads as the file's, nothing else")

-- files
local dir = tap.scratch("yaml")
local path = dir .. "/grid.yaml"
local f = assert(io.open(path, "w"))
f:write(sweep)
f:close()
local g = yaml.load(path)
tap.eq(g.random.n, 8, "load reads a file")
tap.eq(yaml.where(g, "grid"), path .. ":4:1", "positions of a loaded file name it")
f = assert(io.open(dir .. "/dup.yaml", "w"))
f:write("seeds: [0]\nseeds: [1]\n")
f:close()
tap.raises(function() yaml.load(dir .. "/dup.yaml") end, dir .. "/dup.yaml:2:1: duplicate key 'seeds'", "load errors name the file")
tap.raises(function() yaml.load(dir .. "/missing.yaml") end, { dir .. "/missing.yaml: cannot open", "No such file" },
  "a missing file")
os.remove(path)
os.remove(dir .. "/dup.yaml")
os.remove(dir)

os.exit(tap.done(), true)
