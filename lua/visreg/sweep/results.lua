-- visreg.sweep.results: results.jsonl and results.csv rebuilt from the trial folders, the
-- progress line, and the table of configurations (mean +- std over seeds, sorted by the metric)
-- with the command that reruns the best one.
local core = require "visreg.core"
local util = require "visreg.util"
local spec = require "visreg.sweep.spec"
local store = require "visreg.sweep.store"
local C = core.C

local M = {}

-- a status as the folder says it now: a "running" trial whose process is gone was interrupted
local function current_status(st, host)
  if st.status == "running" and st.host == host and st.pid and C.vr_proc_alive(st.pid) == 0 then return "interrupted" end
  return st.status or "pending"
end

-- one line per trial (the record's order): index, folder, status, seed, values, attempts,
-- exit_status, wall_seconds, reason, log_tail, stopped_at, rung_metric and every number of the
-- trial's summary.json under summary
function M.collect(dir, rec, host)
  local lines = {}
  for _, t in ipairs(rec.trials) do
    local st = store.trial_state(dir, t)
    local values = {}
    for _, kv in ipairs(t.values) do values[kv[1]] = kv[2] end
    local line = { index = t.index, folder = t.folder, status = current_status(st, host), seed = t.seed, values = values,
      attempts = st.attempts or 0, exit_status = st.exit_status, wall_seconds = st.wall_seconds, reason = st.reason,
      log_tail = st.log_tail, stopped_at = st.stopped_at, rung_metric = st.rung_metric }
    if line.status == "done" then
      local summary = store.summary(dir, t) or {}
      line.summary = {}
      for k, v in pairs(summary) do if type(v) == "number" then line.summary[k] = v end end
    end
    lines[#lines + 1] = line
  end
  return lines
end

local function csv_field(v)
  if v == nil then return "" end
  local s = type(v) == "table" and spec.set_text(v) or (type(v) == "number" and util.json_encode(v) or tostring(v))
  if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- the swept keys, in the order the file gives them
local function swept_keys(rec)
  local keys, seen = {}, {}
  for _, t in ipairs(rec.trials) do
    for _, kv in ipairs(t.values) do
      if not seen[kv[1]] then seen[kv[1]] = true; keys[#keys + 1] = kv[1] end
    end
  end
  return keys
end

-- writes results.jsonl and results.csv (each through a rename: a reader never sees half a file)
function M.write(dir, rec, lines)
  local out = {}
  for i, l in ipairs(lines) do out[i] = util.json_encode(l) end
  store.write(dir .. "/results.jsonl", table.concat(out, "\n") .. (#out > 0 and "\n" or ""))
  local keys = swept_keys(rec)
  local numbers, nseen = {}, {}
  for _, l in ipairs(lines) do
    for k in pairs(l.summary or {}) do
      if not nseen[k] then nseen[k] = true; numbers[#numbers + 1] = k end
    end
  end
  table.sort(numbers)
  local header = { "index", "folder", "status" }
  for _, k in ipairs(keys) do header[#header + 1] = k end
  for _, k in ipairs { "seed", "attempts", "wall_seconds" } do header[#header + 1] = k end
  for _, k in ipairs(numbers) do header[#header + 1] = k end
  local rows = { table.concat(header, ",") }
  for _, l in ipairs(lines) do
    local row = { csv_field(l.index), csv_field(l.folder), csv_field(l.status) }
    for _, k in ipairs(keys) do row[#row + 1] = csv_field(l.values[k]) end
    row[#row + 1] = csv_field(l.seed)
    row[#row + 1] = csv_field(l.attempts)
    row[#row + 1] = csv_field(l.wall_seconds)
    for _, k in ipairs(numbers) do row[#row + 1] = csv_field(l.summary and l.summary[k]) end
    rows[#rows + 1] = table.concat(row, ",")
  end
  store.write(dir .. "/results.csv", table.concat(rows, "\n") .. "\n")
end

---------------------------------------------------------------- the summary
function M.counts(lines)
  local c = { done = 0, failed = 0, stopped = 0, running = 0, paused = 0, interrupted = 0, pending = 0 }
  for _, l in ipairs(lines) do c[l.status] = (c[l.status] or 0) + 1 end
  return c
end

-- "12/48 done, 2 running, 1 failed, 33 pending; ETA 14:20" (ETA from the finished trials' mean
-- wall time, `parallel` at a time)
function M.progress(lines, parallel)
  local c = M.counts(lines)
  local parts = { string.format("%d/%d done", c.done, #lines) }
  for _, k in ipairs { "running", "failed", "stopped", "paused", "interrupted", "pending" } do
    if c[k] > 0 then parts[#parts + 1] = string.format("%d %s", c[k], k) end
  end
  local wall, n = 0, 0
  for _, l in ipairs(lines) do
    if l.status == "done" and l.wall_seconds then wall, n = wall + l.wall_seconds, n + 1 end
  end
  local left = c.running + c.paused + c.interrupted + c.pending
  local s = table.concat(parts, ", ")
  if n > 0 and left > 0 then
    s = s .. "; ETA " .. require("visreg.trainer").fmt_time(wall / n * math.ceil(left / math.max(1, parallel or 1)))
  end
  return s
end

local function mean_std(xs)
  local n, sum = #xs, 0
  for _, x in ipairs(xs) do sum = sum + x end
  local mean = sum / n
  if n < 2 then return mean, nil end
  local ss = 0
  for _, x in ipairs(xs) do ss = ss + (x - mean) ^ 2 end
  return mean, math.sqrt(ss / (n - 1)) -- the sample standard deviation, as numpy's std(ddof=1)
end

-- configurations (trials that differ only in seed) with the metric's mean and std over their
-- finished seeds, best first
function M.configurations(rec, lines, metric, mode)
  local groups, order = {}, {}
  for i, t in ipairs(rec.trials) do
    local key = spec.trial_key { values = t.values }
    local g = groups[key]
    if not g then
      g = { values = t.values, trials = 0, seeds = {}, xs = {}, first = t }
      groups[key] = g
      order[#order + 1] = g
    end
    g.trials = g.trials + 1
    local l = lines[i]
    local v = l.summary and l.summary[metric]
    if l.status == "done" and type(v) == "number" and v == v then
      g.xs[#g.xs + 1] = v
      g.seeds[#g.seeds + 1] = t.seed
    end
  end
  for _, g in ipairs(order) do
    if #g.xs > 0 then g.mean, g.std = mean_std(g.xs) end
  end
  local sign = mode == "min" and 1 or -1
  table.sort(order, function(a, b)
    if (a.mean == nil) ~= (b.mean == nil) then return a.mean ~= nil end
    if a.mean ~= nil and a.mean ~= b.mean then return sign * a.mean < sign * b.mean end
    return a.first.index < b.first.index
  end)
  return order
end

local function fmt_value(x)
  if x == nil then return "-" end
  if math.abs(x) >= 1e4 or (x ~= 0 and math.abs(x) < 1e-3) then return string.format("%.4g", x) end
  return string.format("%.4f", x)
end

-- a spread is read beside its mean: the same decimals, unless the mean needed exponents
local function fmt_std(x) return math.abs(x) >= 1e4 and string.format("%.4g", x) or string.format("%.4f", x) end

-- the command that trains the configuration again (its first finished seed)
function M.rerun_command(exe, rec, g, name)
  local parts = { exe, "train", util.shell_quote(rec.recipe) }
  local function add(k, v) parts[#parts + 1] = "--set " .. util.shell_quote(k .. "=" .. spec.set_text(v)) end
  for _, kv in ipairs(rec.set or {}) do add(kv[1], kv[2]) end
  for _, kv in ipairs(g.values) do add(kv[1], kv[2]) end
  if g.seeds[1] then add("seed", g.seeds[1]) end
  parts[#parts + 1] = "--out " .. util.shell_quote("runs/" .. name .. "-best")
  return table.concat(parts, " ")
end

-- prints the table of configurations, the failed and stopped trials, and the best configuration
function M.print_table(rec, lines, o)
  local metric, mode = o.metric or rec.metric, o.mode or rec.mode
  local groups = M.configurations(rec, lines, metric, mode)
  local keys = swept_keys(rec)
  local header = { "rank" }
  for _, k in ipairs(keys) do header[#header + 1] = k end
  header[#header + 1] = metric .. (mode == "min" and " (min)" or "")
  header[#header + 1] = "seeds"
  local rows = { header }
  for i, g in ipairs(groups) do
    local vals = {}
    for _, kv in ipairs(g.values) do vals[kv[1]] = kv[2] end
    local row = { g.mean and tostring(i) or "-" }
    for _, k in ipairs(keys) do row[#row + 1] = vals[k] ~= nil and spec.set_text(vals[k]) or "" end
    row[#row + 1] = g.mean and (fmt_value(g.mean) .. (g.std and (" +- " .. fmt_std(g.std)) or "")) or "-"
    row[#row + 1] = string.format("%d/%d", #g.xs, g.trials)
    rows[#rows + 1] = row
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for j, c in ipairs(row) do widths[j] = math.max(widths[j] or 0, #c) end
  end
  for _, row in ipairs(rows) do
    local cells = {}
    for j, c in ipairs(row) do cells[j] = c .. string.rep(" ", widths[j] - #c) end
    print((table.concat(cells, "  "):gsub("%s+$", "")))
  end
  for _, l in ipairs(lines) do
    if l.status == "failed" then
      print(string.format("failed  %s: %s%s", l.folder, l.reason or "", l.log_tail and l.log_tail ~= "" and
        ("\n        " .. l.log_tail:match("([^\n]*)$")) or ""))
    end
  end
  local best = groups[1]
  if best and best.mean then
    local vals = {}
    for _, kv in ipairs(best.values) do vals[#vals + 1] = kv[1] .. "=" .. spec.set_text(kv[2]) end
    print(string.format("best: %s  %s %s%s over %d seed%s", #vals > 0 and table.concat(vals, " ") or "(the recipe as it is)",
      metric, fmt_value(best.mean), best.std and (" +- " .. fmt_std(best.std)) or "", #best.xs, #best.xs == 1 and "" or "s"))
    print("rerun: " .. M.rerun_command(o.exe, rec, best, o.name))
  end
end

return M
