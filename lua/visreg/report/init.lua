-- visreg.report: `visreg report DIR` (tools/cmd_report.c). A run folder gets DIR/report.html
-- (visreg.report.run), a sweep folder too (visreg.report.sweep, from its results.jsonl). Both
-- pages are single files: inline SVG, a small inline script, no request of any kind.
local util = require "visreg.util"

local M = {}

local USAGE = [[usage: visreg report DIR [--out FILE] [--trials]
  writes DIR/report.html: a run folder's page (recipe, summary, training curves, spectra, kNN per
  class, confusion matrix) or a sweep folder's (results table, the metric against each value,
  parallel coordinates, learning curves, importance, failed trials)
  --out FILE   writes the page to FILE instead
  --trials     for a sweep, also writes each trial's own page]]

-- "sweep", "run" or nil: what a folder is
function M.kind(dir)
  if util.file_exists(dir .. "/results.jsonl") or util.file_exists(dir .. "/sweep.json") then return "sweep" end
  for _, f in ipairs { "run.json", "metrics.jsonl", "summary.json", "recipe.json" } do
    if util.file_exists(dir .. "/" .. f) then return "run" end
  end
  return nil
end

-- writes the folder's page; returns the path, its size in bytes and the kind
function M.write(dir, o)
  o = o or {}
  dir = dir:gsub("/+$", "")
  if dir == "" then dir = "/" end
  local kind = M.kind(dir)
  if kind == "sweep" then
    local sweep = require "visreg.report.sweep"
    if o.trials then sweep.write_trials(dir) end
    local path, size = sweep.write(dir, { path = o.path })
    return path, size, kind
  elseif kind == "run" then
    local path, size = require("visreg.report.run").write(dir, { path = o.path })
    return path, size, kind
  end
  error(string.format("%s: neither a run folder (run.json, metrics.jsonl) nor a sweep folder (results.jsonl, sweep.json)", dir), 0)
end

function M.main(args)
  local cli = require "visreg.cli"
  local pos, o = cli.parse(args, { out = "value", trials = "flag" })
  if not pos then io.stderr:write("visreg report: ", o, "\n", USAGE, "\n"); return 2 end
  if o.help then print(USAGE); return 0 end
  if #pos ~= 1 then io.stderr:write("visreg report: expected one run or sweep folder\n", USAGE, "\n"); return 2 end
  if not util.is_dir(pos[1]) then io.stderr:write("visreg report: ", pos[1], " is not a folder\n"); return 2 end
  return cli.run_protected(function()
    local t0 = require("visreg.core").now()
    local path, size, kind = M.write(pos[1], { path = o.out, trials = o.trials })
    print(string.format("wrote %s (%s page, %.0f kB, %.2f s)", path, kind, size / 1024, require("visreg.core").now() - t0))
    return 0
  end)
end

return M
