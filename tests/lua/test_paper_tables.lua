-- the paper's README tables (visreg.paper_tables, tools/paper_tables.lua) from small synthetic
-- results.jsonl files: method names, mean ± std over seeds, the borrowed row, the README splice
local tap = require "tap"
local vr = require "visreg"
local util = vr.util
local pt = require "visreg.paper_tables"

tap.eq(pt.method { ["loss.kind"] = "visreg", ["loss.weights.scale"] = 1, ["loss.weights.shape"] = 1 }, "VISReg", "VISReg")
tap.eq(pt.method { ["loss.weights.scale"] = 0.5, ["loss.weights.shape"] = 2, ["loss.weights.center"] = 0.5 }, "VISReg*",
  "VISReg* from its weights (kind visreg by default)")
tap.eq(pt.method { ["loss.weights.shape"] = 0 }, "VISReg without shape", "an ablation")
tap.eq(pt.method { ["loss.kind"] = "sigreg", ["loss.weights.scale"] = 0.5 }, "SIGReg", "another kind ignores the weights")
local m, s = pt.stats { 0.8, 0.82, 0.84 }
tap.near(m, 0.82, 1e-12, "mean")
tap.near(s, 0.02, 1e-12, "sample std")

local dir = tap.scratch("paper_tables")
local function line(t) return util.json_encode(t) end
local function trial(seed, kind, k, acc, status)
  return line { index = seed, status = status or "done", seed = seed, wall_seconds = 30,
    values = { ["loss.slices"] = k, ["loss.kind"] = kind }, summary = { linear_probe = acc } }
end
util.write_file(dir .. "/paper-slices.jsonl", table.concat({
  trial(0, "visreg", 32, 0.80), trial(1, "visreg", 32, 0.82), trial(0, "sigreg", 32, 0.70),
  trial(1, "sigreg", 32, 0.72), trial(0, "visreg", 256, 0.85), trial(1, "visreg", 256, 0.0, "pending") }, "\n") .. "\n")
util.mkdir_p(dir .. "/paper-long-tail")
util.write_file(dir .. "/paper-long-tail/results.jsonl", line { status = "done", seed = 0, wall_seconds = 60,
  values = { ["data.reduce.long_tail"] = 100, ["loss.kind"] = "visreg" },
  summary = { linear_probe = 0.7, linear_probe_many = 0.9, linear_probe_medium = 0.6, linear_probe_few = 0.5 } } .. "\n")
util.write_file(dir .. "/paper-ablations.jsonl", line { status = "done", seed = 0, wall_seconds = 60,
  values = { ["loss.weights.scale"] = 0, ["loss.weights.shape"] = 1, ["loss.weights.center"] = 1 },
  summary = { linear_probe = 0.6, linear_probe_many = 0.8, linear_probe_medium = 0.5, linear_probe_few = 0.4 } } .. "\n")

-- the untrained encoder: a balanced trial fills every K column; a long-tail one only its own column
local function floor(lt, acc)
  return line { status = "done", seed = 0, wall_seconds = 5, values = { ["data.reduce.per_class"] = lt == 0 and 1000 or 3000,
    ["data.reduce.long_tail"] = lt, ["data.reduce.low_rank"] = 0 }, summary = { linear_probe = acc } }
end
util.write_file(dir .. "/paper-untrained.jsonl", table.concat({ floor(0, 0.6), floor(100, 0.5), floor(10, 0.4) }, "\n") .. "\n")

local text = pt.render(dir, { machine = "test machine", date = "2026-12-06" })
tap.ok(text:find("| untrained encoder (0 epochs) | 60.0 | 60.0 |", 1, true), "the untrained row in every K column")
tap.ok(text:find("| untrained encoder (0 epochs) | 50.0 | - | - | - |\n", 1, true), "the untrained row of the long tail, its ratio only")
tap.ok(not text:find("imbalance 10,", 1, true), "an untrained trial adds no column")
tap.ok(text and text:find("| VISReg | 81.0 ± 1.4 | 85.0 |", 1, true), "K = 32: mean ± std over two seeds; K = 256: one", text)
tap.ok(text:find("| SIGReg | 71.0 ± 1.4 | - |", 1, true), "a missing cell is -")
tap.ok(text:find("| method | K = 32 | K = 256 |", 1, true), "columns sorted by value")
tap.ok(text:find("5 of 6 trials done, seeds 0, 1, 2.5 min", 1, true), "trials counted, pending ones left out")
tap.ok(text:find("| VISReg without scale | 60.0 | 80.0 | 50.0 | 40.0 |", 1, true), "the ablation row")
tap.ok(text:find("| VISReg (paper-long-tail) | 70.0 | 90.0 | 60.0 | 50.0 |", 1, true), "the borrowed full VISReg row")
tap.ok(text:find("imbalance 100, overall | imbalance 100, many", 1, true), "long-tail columns")
tap.ok(not text:find("paper-dims", 1, true), "a sweep without results gives no table")
tap.ok(text:find("Machine: test machine, 2026-12-06.", 1, true), "the machine line")

-- the command: prints and splices into a README between the markers
local readme = dir .. "/README.md"
util.write_file(readme, "# x\n\n" .. pt.BEGIN .. "\nold\n" .. pt.END .. "\n\nafter\n")
local rc, out = tap.sh(string.format("bin/visreg run tools/paper_tables.lua --dir %s --readme %s --machine m", dir, readme))
tap.ok(rc == 0 and out:find("| SIGReg | 71.0 ± 1.4 | - |", 1, true), "the command prints the tables", out)
local r = util.read_file(readme)
tap.ok(r:find("| SIGReg | 71.0 ± 1.4 | - |", 1, true) and not r:find("old", 1, true) and r:find("after", 1, true),
  "the README block is replaced, the rest kept")
local _, why = pt.splice("no markers", "x")
tap.ok(why and why:find("markers", 1, true), "a README without markers is refused")
local brc, bad = tap.sh(string.format("bin/visreg run tools/paper_tables.lua --dir %s/none", dir))
tap.ok(bad:find("no finished trial", 1, true) and brc == 1, "no results: a message and status 1", bad)
tap.done()
