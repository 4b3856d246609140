-- visreg.paper_tables: the README's training tables for the paper's experiments (README, "The
-- paper at small scale"), made from the sweeps' results.jsonl (recipes/paper/*.yaml): each cell
-- the mean ± sample std over seeds of a summary number (in %), with the trials counted, the seeds,
-- the summed wall time and the machine. tools/paper_tables.lua is the command.
local util = require "visreg.util"

local M = {}

local NAMES = { sigreg = "SIGReg", swd = "SWD", vicreg = "VICReg", vicreg_pooled = "VICReg (pooled)", barlow = "Barlow Twins" }
local LT_METRICS = { "linear_probe", "linear_probe_many", "linear_probe_medium", "linear_probe_few" }
local LT_NAMES = { "overall", "many", "medium", "few" }

-- the tables: the sweep (its folder name), the swept key that makes the columns (nil: one
-- column group) and the summary numbers shown under each column. floor: the untrained encoder's
-- trials (recipes/paper/untrained.yaml) on the same training set, the last row
local UNTRAINED = "paper-untrained"
local BALANCED = { ["data.reduce.per_class"] = 1000, ["data.reduce.long_tail"] = 0, ["data.reduce.low_rank"] = 0 }
M.TABLES = {
  { sweep = "paper-slices", title = "Linear probe (%) against the number of slices K (D = 128)",
    column = "loss.slices", label = "K = %g", floor = BALANCED },
  { sweep = "paper-dims", title = "Linear probe (%) against the embedding dimension D (K = 256)",
    column = "model.dim", label = "D = %g", floor = BALANCED },
  { sweep = "paper-long-tail", title = "Long-tailed training set: linear probe (%) on the balanced test images",
    column = "data.reduce.long_tail", label = "imbalance %g", metrics = LT_METRICS, names = LT_NAMES,
    floor = { ["data.reduce.per_class"] = 3000, ["data.reduce.low_rank"] = 0 } },
  { sweep = "paper-ablations", title = "VISReg without one term, imbalance 100: linear probe (%)",
    metrics = LT_METRICS, names = LT_NAMES,
    -- the full VISReg row comes from the long-tail sweep at the same ratio
    borrow = { sweep = "paper-long-tail", where = { ["data.reduce.long_tail"] = 100 }, method = "VISReg" },
    floor = { ["data.reduce.per_class"] = 3000, ["data.reduce.long_tail"] = 100, ["data.reduce.low_rank"] = 0 } },
  { sweep = "paper-low-rank", title = "Low-rank images (top r principal components): linear probe (%)",
    column = "data.reduce.low_rank", label = "r = %g",
    floor = { ["data.reduce.per_class"] = 1000, ["data.reduce.long_tail"] = 0 } },
}
M.FLOOR_ROW = "untrained encoder (0 epochs)"

-- the method a trial ran, from its swept values: VISReg, VISReg* (0.5, 2, 0.5), VISReg without a
-- term (its weight 0), SIGReg, SWD, VICReg
function M.method(v)
  local kind = v["loss.kind"] or "visreg"
  if kind ~= "visreg" then return NAMES[kind] or kind end
  local s, h, c = v["loss.weights.scale"] or 1, v["loss.weights.shape"] or 1, v["loss.weights.center"] or 1
  if s == 1 and h == 1 and c == 1 then return "VISReg" end
  if s == 0.5 and h == 2 and c == 0.5 then return "VISReg*" end
  local off, rest = {}, true
  for _, t in ipairs { { "scale", s }, { "shape", h }, { "center", c } } do
    if t[2] == 0 then off[#off + 1] = t[1] elseif t[2] ~= 1 then rest = false end
  end
  if #off > 0 and rest then return "VISReg without " .. table.concat(off, " and ") end
  return string.format("VISReg (%g, %g, %g)", s, h, c)
end

-- mean and sample standard deviation (0 for one value)
function M.stats(xs)
  local n, sum = #xs, 0
  for _, x in ipairs(xs) do sum = sum + x end
  local mean = sum / n
  local ss = 0
  for _, x in ipairs(xs) do ss = ss + (x - mean) ^ 2 end
  return mean, n > 1 and math.sqrt(ss / (n - 1)) or 0
end

local function cell(xs)
  if #xs == 0 then return "-" end
  local m, s = M.stats(xs)
  if #xs == 1 then return string.format("%.1f", 100 * m) end
  return string.format("%.1f ± %.1f", 100 * m, 100 * s)
end

-- the lines of a results.jsonl (nil when the file is missing)
function M.read_results(path)
  local text = util.read_file(path)
  if not text then return nil end
  local lines = {}
  for l in text:gmatch("[^\n]+") do
    local ok, v = pcall(util.json_decode, l)
    if ok and type(v) == "table" then lines[#lines + 1] = v end
  end
  return lines
end

-- dir/NAME/results.jsonl (a sweep folder) or dir/NAME.jsonl (a copy)
function M.find(dir, name)
  return M.read_results(dir .. "/" .. name .. "/results.jsonl") or M.read_results(dir .. "/" .. name .. ".jsonl")
end

local function matches(l, where)
  for k, v in pairs(where or {}) do if l.values[k] ~= v then return false end end
  return true
end

-- one table's markdown lines from its trials, the borrowed ones (first rows) and the untrained
-- encoder's (the last row: in its own column when it has the column's key, else in every column);
-- nil when no trial is done
function M.table(t, lines, borrowed, floor)
  local metrics, names = t.metrics or { "linear_probe" }, t.names or { "" }
  local rows, row_of, cols, col_seen = {}, {}, {}, {}
  local cells = {} -- cells[method][column][metric] = { values }
  local done, total, wall, seeds, seed_seen = 0, 0, 0, {}, {}
  local function add(l, method, col)
    if not row_of[method] then row_of[method] = true; rows[#rows + 1] = method; cells[method] = {} end
    col = col or (t.column and l.values[t.column] or "all")
    if not col_seen[col] then col_seen[col] = true; cols[#cols + 1] = col end
    cells[method][col] = cells[method][col] or {}
    for _, m in ipairs(metrics) do
      local x = l.summary and l.summary[m]
      cells[method][col][m] = cells[method][col][m] or {}
      if type(x) == "number" and x == x then table.insert(cells[method][col][m], x) end
    end
  end
  for _, l in ipairs(borrowed or {}) do
    if l.status == "done" then add(l, t.borrow.method .. " (" .. t.borrow.sweep .. ")") end
  end
  for _, l in ipairs(lines) do
    l.values = l.values or {}
    total = total + 1
    if l.status == "done" then
      done, wall = done + 1, wall + (l.wall_seconds or 0)
      if l.seed and not seed_seen[l.seed] then seed_seen[l.seed] = true; seeds[#seeds + 1] = l.seed end
      add(l, M.method(l.values))
    end
  end
  if done == 0 then return nil end
  for _, l in ipairs(floor or {}) do
    if l.status == "done" then
      local own = t.column and l.values[t.column]
      if own == nil then
        for _, c in ipairs(cols) do add(l, M.FLOOR_ROW, c) end
      elseif col_seen[own] then
        add(l, M.FLOOR_ROW, own)
      end
    end
  end
  table.sort(cols, function(a, b)
    if type(a) == "number" and type(b) == "number" then return a < b end
    return tostring(a) < tostring(b)
  end)
  table.sort(seeds)
  local head, rule = { "method" }, { "---" }
  for _, c in ipairs(cols) do
    for i = 1, #metrics do
      local parts = {}
      if t.column then parts[#parts + 1] = string.format(t.label, c) end
      if names[i] ~= "" then parts[#parts + 1] = names[i] end
      head[#head + 1] = table.concat(parts, ", ")
      rule[#rule + 1] = "---"
    end
  end
  local out = { string.format("**%s** (`%s`)", t.title, t.sweep), "",
    "| " .. table.concat(head, " | ") .. " |", "|" .. table.concat(rule, "|") .. "|" }
  for _, r in ipairs(rows) do
    local row = { r }
    for _, c in ipairs(cols) do
      for _, m in ipairs(metrics) do row[#row + 1] = cell(cells[r][c] and cells[r][c][m] or {}) end
    end
    out[#out + 1] = "| " .. table.concat(row, " | ") .. " |"
  end
  out[#out + 1] = ""
  out[#out + 1] = string.format("%d of %d trials done, seeds %s, %.1f min of trial wall time.", done, total,
    table.concat(seeds, ", "), wall / 60)
  return out
end

-- the machine as /proc/cpuinfo names it, with its core count
function M.machine()
  local info = util.read_file("/proc/cpuinfo") or ""
  local model = info:match("model name%s*:%s*([^\n]+)") or "unknown CPU"
  local n = 0
  for _ in info:gmatch("\nprocessor%s*:") do n = n + 1 end
  if info:match("^processor%s*:") then n = n + 1 end
  return string.format("%s, %d cores", model, n)
end

-- every table whose sweep has results under dir, as one markdown text
function M.render(dir, o)
  o = o or {}
  local parts = {}
  for _, t in ipairs(M.TABLES) do
    local lines = M.find(dir, t.sweep)
    if lines then
      local borrowed
      if t.borrow then
        borrowed = {}
        for _, l in ipairs(M.find(dir, t.borrow.sweep) or {}) do
          l.values = l.values or {}
          if matches(l, t.borrow.where) and M.method(l.values) == t.borrow.method then borrowed[#borrowed + 1] = l end
        end
      end
      local floor = {}
      for _, l in ipairs(t.floor and M.find(dir, UNTRAINED) or {}) do
        l.values = l.values or {}
        if matches(l, t.floor) then floor[#floor + 1] = l end
      end
      local tab = M.table(t, lines, borrowed, floor)
      if tab then parts[#parts + 1] = table.concat(tab, "\n") end
    end
  end
  if #parts == 0 then return nil end
  parts[#parts + 1] = string.format("Machine: %s%s.", o.machine or M.machine(), o.date and (", " .. o.date) or "")
  return table.concat(parts, "\n\n") .. "\n"
end

M.BEGIN, M.END = "<!-- paper-tables: made by tools/paper_tables.lua -->", "<!-- /paper-tables -->"

-- text with the part between the markers replaced by block (nil, why when a marker is missing)
function M.splice(text, block)
  local a, b = text:find(M.BEGIN, 1, true)
  local c = text:find(M.END, 1, true)
  if not a or not c or c < b then return nil, "the markers " .. M.BEGIN .. " and " .. M.END .. " are missing" end
  return text:sub(1, b) .. "\n" .. block .. text:sub(c)
end

return M
