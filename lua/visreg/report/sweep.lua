-- visreg.report.sweep: a sweep folder as one HTML page (SWEEP_DIR/report.html), from its
-- results.jsonl (the trials, their values, statuses and summary numbers), with the metric and the
-- order of the swept keys from sweep.json when it is there and the learning curves from each
-- trial's metrics.jsonl epoch lines.
--
-- Element ids: table-configs (configurations, mean +- std over seeds), table-results (one row a
-- trial), plot-metric-KEY (the metric against each swept value), plot-parallel, plot-curves
-- (plot-curves-loss, plot-curves-online-probe; select-grouping picks the value that colours them),
-- table-importance and plot-importance (eta-squared, the method in importance-method),
-- table-failed (failed, stopped and unfinished trials with their reasons).
local util = require "visreg.util"
local plot = require "visreg.plot"
local html = require "visreg.report.html"

local M = {}
local esc, finite, fmt = html.esc, html.finite, html.fmt

local function jkey(v) return util.json_encode(v) end

-- the epoch lines of a trial's metrics.jsonl, in epoch order (only those lines are decoded)
local function epoch_lines(path)
  local by, order = {}, {}
  local f = io.open(path, "rb")
  if not f then return {} end
  for line in f:lines() do
    if line:find('"type":"epoch"', 1, true) then
      local ok, e = pcall(util.json_decode, line)
      if ok and type(e) == "table" and type(e.epoch) == "number" then
        if not by[e.epoch] then order[#order + 1] = e.epoch end
        by[e.epoch] = e
      end
    end
  end
  f:close()
  table.sort(order)
  local out = {}
  for i, e in ipairs(order) do out[i] = by[e] end
  return out
end

function M.read(dir)
  dir = dir:gsub("/+$", "")
  local d = { dir = dir, name = dir:match("([^/]+)$") or dir, lines = {} }
  local f = io.open(dir .. "/results.jsonl", "rb")
  if f then
    for line in f:lines() do
      local ok, l = pcall(util.json_decode, line)
      if ok and type(l) == "table" then d.lines[#d.lines + 1] = l end
    end
    f:close()
  end
  d.rec = html.read_json(dir .. "/sweep.json")
  local rec = d.rec or {}
  d.metric, d.mode = rec.metric or "linear_probe", rec.mode or "max"
  -- the swept keys: the file's order where sweep.json gives it, else sorted
  local keys, seen = {}, {}
  for _, t in ipairs(rec.trials or {}) do
    for _, kv in ipairs(t.values or {}) do
      if not seen[kv[1]] then seen[kv[1]] = true; keys[#keys + 1] = kv[1] end
    end
  end
  local extra = {}
  for _, l in ipairs(d.lines) do
    for k in pairs(type(l.values) == "table" and l.values or {}) do
      if not seen[k] then seen[k] = true; extra[#extra + 1] = k end
    end
  end
  table.sort(extra)
  for _, k in ipairs(extra) do keys[#keys + 1] = k end
  d.keys = keys
  for _, l in ipairs(d.lines) do
    l.values = type(l.values) == "table" and l.values or {}
    local v = l.status == "done" and type(l.summary) == "table" and l.summary[d.metric] or nil
    l.metric = finite(v) and v or nil
    l.curves = type(l.folder) == "string" and epoch_lines(dir .. "/" .. l.folder .. "/metrics.jsonl") or {}
  end
  return d
end

---------------------------------------------------------------- statistics
local function mean_std(xs)
  local n, s = #xs, 0
  if n == 0 then return nil end
  for _, x in ipairs(xs) do s = s + x end
  local m = s / n
  if n < 2 then return m, nil end
  local ss = 0
  for _, x in ipairs(xs) do ss = ss + (x - m) ^ 2 end
  return m, math.sqrt(ss / (n - 1)) -- the sample standard deviation, as the sweep's table
end
M.mean_std = mean_std

-- the values of a key over the lines: numeric (all numbers), log-spaced (positive, spanning a
-- factor of 10 or more), and the distinct values in order (numbers ascending, others as first seen)
local function key_info(lines, get)
  local info = { numeric = true, distinct = {} }
  local seen = {}
  local lo, hi, any = math.huge, -math.huge, false
  for _, l in ipairs(lines) do
    local v = get(l)
    if v ~= nil then
      any = true
      if type(v) ~= "number" then info.numeric = false else lo, hi = math.min(lo, v), math.max(hi, v) end
      local k = jkey(v)
      if not seen[k] then seen[k] = true; info.distinct[#info.distinct + 1] = v end
    end
  end
  info.any = any
  if not any then info.numeric = false end
  if info.numeric then
    table.sort(info.distinct)
    info.log = lo > 0 and hi / lo >= 10
  end
  return info
end

-- groups of the lines by a key: each distinct value its own group (up to 8), else 5 bins of about
-- equal count (numbers) or the 7 commonest values and "other". Returns labels and each line's
-- group number (nil without a value)
local function grouping(lines, get, info)
  info = info or key_info(lines, get)
  local labels, of = {}, {}
  local function text(v) return html.value_text(v) end
  if #info.distinct <= 8 then
    local idx = {}
    for i, v in ipairs(info.distinct) do idx[jkey(v)] = i; labels[i] = text(v) end
    for i, l in ipairs(lines) do local v = get(l); of[i] = v ~= nil and idx[jkey(v)] or nil end
    return labels, of
  end
  if info.numeric then
    local vals = {}
    for _, l in ipairs(lines) do local v = get(l); if v ~= nil then vals[#vals + 1] = v end end
    table.sort(vals)
    local cuts = {}
    for b = 1, 4 do cuts[b] = vals[math.max(1, math.floor(b * #vals / 5))] end
    local bins = {}
    for i, l in ipairs(lines) do
      local v = get(l)
      if v ~= nil then
        local b = 5
        for k = 1, 4 do if v <= cuts[k] then b = k; break end end
        of[i] = b
        bins[b] = bins[b] or { lo = v, hi = v }
        bins[b].lo, bins[b].hi = math.min(bins[b].lo, v), math.max(bins[b].hi, v)
      end
    end
    -- empty bins (ties) are dropped and the rest renumbered
    local map, n = {}, 0
    for b = 1, 5 do
      if bins[b] then
        n = n + 1
        map[b] = n
        labels[n] = string.format("%s to %s", text(bins[b].lo), text(bins[b].hi))
      end
    end
    for i in pairs(of) do of[i] = map[of[i]] end
    return labels, of
  end
  local count = {}
  for _, l in ipairs(lines) do local v = get(l); if v ~= nil then count[jkey(v)] = (count[jkey(v)] or 0) + 1 end end
  local order = {}
  for _, v in ipairs(info.distinct) do order[#order + 1] = v end
  table.sort(order, function(a, b) return count[jkey(a)] > count[jkey(b)] end)
  local idx = {}
  for i = 1, 7 do if order[i] ~= nil then idx[jkey(order[i])] = i; labels[i] = text(order[i]) end end
  labels[#labels + 1] = "other"
  for i, l in ipairs(lines) do local v = get(l); if v ~= nil then of[i] = idx[jkey(v)] or #labels end end
  return labels, of
end

-- eta-squared: the share of the variance of y that the means of its groups explain
function M.eta_squared(ys, groups)
  local n, s = 0, 0
  for i, y in pairs(ys) do if groups[i] then n, s = n + 1, s + y end end
  if n < 2 then return nil end
  local m = s / n
  local tot, sums, cnt = 0, {}, {}
  for i, y in pairs(ys) do
    local g = groups[i]
    if g then
      tot = tot + (y - m) ^ 2
      sums[g], cnt[g] = (sums[g] or 0) + y, (cnt[g] or 0) + 1
    end
  end
  if tot <= 0 then return nil end
  local between, k = 0, 0
  for g, sg in pairs(sums) do
    between = between + cnt[g] * (sg / cnt[g] - m) ^ 2
    k = k + 1
  end
  return between / tot, k, n
end

---------------------------------------------------------------- the page's parts
local function values_text(l, keys)
  local t = {}
  for _, k in ipairs(keys) do if l.values[k] ~= nil then t[#t + 1] = k .. "=" .. html.value_text(l.values[k]) end end
  if l.seed ~= nil then t[#t + 1] = "seed=" .. tostring(l.seed) end
  return table.concat(t, " ")
end

local function configurations(d)
  local by, order = {}, {}
  for _, l in ipairs(d.lines) do
    local k = jkey(l.values)
    local g = by[k]
    if not g then
      g = { values = l.values, lines = {}, xs = {}, seeds = {}, first = l }
      by[k] = g
      order[#order + 1] = g
    end
    g.lines[#g.lines + 1] = l
    if l.metric then g.xs[#g.xs + 1] = l.metric; g.seeds[#g.seeds + 1] = l.seed end
  end
  for _, g in ipairs(order) do g.mean, g.std = mean_std(g.xs) end
  local sign = d.mode == "min" and 1 or -1
  table.sort(order, function(a, b)
    if (a.mean == nil) ~= (b.mean == nil) then return a.mean ~= nil end
    if a.mean and a.mean ~= b.mean then return sign * a.mean < sign * b.mean end
    return (a.first.index or 0) < (b.first.index or 0)
  end)
  return order
end

-- the summary numbers the trials report, the metric first
local PREFERRED = { "linear_probe", "knn", "online_probe", "final_loss", "effective_rank", "train_seconds", "images_per_second" }
local function number_keys(d)
  local seen, out = {}, {}
  local have = {}
  for _, l in ipairs(d.lines) do
    for k, v in pairs(type(l.summary) == "table" and l.summary or {}) do if type(v) == "number" then have[k] = true end end
  end
  local function add(k) if have[k] and not seen[k] then seen[k] = true; out[#out + 1] = k end end
  add(d.metric)
  for _, k in ipairs(PREFERRED) do add(k) end
  local rest = {}
  for k in pairs(have) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do add(k) end
  return out
end

-- a spread is read beside its mean: the same decimals, unless the mean needed exponents
local function fmt_std(m, s)
  local a = math.abs(m)
  if a >= 1e4 or (a < 1e-3 and m ~= 0) then return string.format("%.2g", s) end
  return string.format("%.4f", s)
end
M.fmt_std = fmt_std

local function pm_cell(m, s, n)
  if m == nil then return html.cell(nil, { text = "-" }) end
  return html.cell(m, { text = fmt(m) .. (s and (" \194\177 " .. fmt_std(m, s)) or ""), data = { std = s and util.json_encode(s) or "", n = n } })
end

local function configs_table(d, groups, nkeys)
  local cols = { { label = "rank" } }
  for _, k in ipairs(d.keys) do cols[#cols + 1] = { label = k } end
  cols[#cols + 1] = { label = d.metric .. (d.mode == "min" and " (min)" or "") .. " mean \194\177 std", key = d.metric }
  cols[#cols + 1] = { label = "seeds" }
  local others = {}
  for _, k in ipairs(nkeys) do if k ~= d.metric and #others < 5 then others[#others + 1] = k; cols[#cols + 1] = { label = k, key = k } end end
  local rows = {}
  for i, g in ipairs(groups) do
    local cells = { html.cell(g.mean and i or nil, { text = g.mean and tostring(i) or "-" }) }
    for _, k in ipairs(d.keys) do cells[#cells + 1] = html.cell(g.values[k], { plain = true }) end
    cells[#cells + 1] = pm_cell(g.mean, g.std, #g.xs)
    cells[#cells + 1] = html.cell(#g.xs, { text = string.format("%d/%d", #g.xs, #g.lines) })
    for _, k in ipairs(others) do
      local xs = {}
      for _, l in ipairs(g.lines) do
        local v = l.status == "done" and type(l.summary) == "table" and l.summary[k]
        if finite(v) then xs[#xs + 1] = v end
      end
      local m, s = mean_std(xs)
      cells[#cells + 1] = pm_cell(m, s, #xs)
    end
    rows[#rows + 1] = { attrs = (i == 1 and g.mean) and ' class="best"' or "", cells = cells }
  end
  return html.table { id = "table-configs", columns = cols, rows = rows, sortable = true, tall = #rows > 25 }
end

local function results_table(d, nkeys)
  local cols = { { label = "#" }, { label = "status" } }
  for _, k in ipairs(d.keys) do cols[#cols + 1] = { label = k, key = k } end
  cols[#cols + 1] = { label = "seed" }
  for _, k in ipairs(nkeys) do cols[#cols + 1] = { label = k, key = k } end
  cols[#cols + 1] = { label = "wall s" }
  cols[#cols + 1] = { label = "attempts" }
  local rows = {}
  for _, l in ipairs(d.lines) do
    local page = type(l.folder) == "string" and util.file_exists(d.dir .. "/" .. l.folder .. "/report.html")
    local cells = { html.cell(l.index, page and { raw = true, text = string.format('<a href="%s/report.html">%s</a>', esc(l.folder), esc(l.index)) } or nil),
      html.cell(l.status, { class = "st-" .. html.slug(l.status or "unknown") }) }
    for _, k in ipairs(d.keys) do cells[#cells + 1] = html.cell(l.values[k], { plain = true }) end
    cells[#cells + 1] = html.cell(l.seed)
    for _, k in ipairs(nkeys) do cells[#cells + 1] = html.cell(type(l.summary) == "table" and l.summary[k] or nil, { data = { key = k } }) end
    cells[#cells + 1] = html.cell(l.wall_seconds, { text = finite(l.wall_seconds) and string.format("%.1f", l.wall_seconds) or nil })
    cells[#cells + 1] = html.cell(l.attempts)
    rows[#rows + 1] = { attrs = string.format(' data-trial="%s" data-status="%s" data-folder="%s"', esc(l.index), esc(l.status or ""),
      esc(l.folder or "")), cells = cells }
  end
  return html.table { id = "table-results", columns = cols, rows = rows, sortable = true, tall = #rows > 25 }
end

local function seed_info(d)
  local seeds, pos = {}, {}
  for _, l in ipairs(d.lines) do
    if l.seed ~= nil and not pos[jkey(l.seed)] then seeds[#seeds + 1] = l.seed; pos[jkey(l.seed)] = true end
  end
  table.sort(seeds, function(a, b) return tostring(a) < tostring(b) end)
  for i, s in ipairs(seeds) do pos[jkey(s)] = i end
  return seeds, pos
end

-- the metric against one swept key: a point per trial (coloured by seed), the mean and std of
-- each value
local function metric_plot(d, key)
  local get = function(l) return l.values[key] end
  local info = key_info(d.lines, get)
  local seeds, spos = seed_info(d)
  local ns = math.max(1, #seeds)
  local cats, cidx
  if not info.numeric then
    cats, cidx = {}, {}
    for i, v in ipairs(info.distinct) do cats[i] = html.value_text(v); cidx[jkey(v)] = i end
  end
  local function xof(v) if cats then return cidx[jkey(v)] end return v end
  local series = {}
  local by_seed = {}
  local at = {}
  for _, l in ipairs(d.lines) do
    local v = get(l)
    if v ~= nil and l.metric then
      local sp = l.seed ~= nil and spos[jkey(l.seed)] or 1
      local s = by_seed[sp]
      if not s then
        s = { x = {}, y = {}, titles = {}, points = true, color_index = sp, radius = 3, opacity = 0.85,
          jitter = (sp - (ns + 1) / 2) * 7, label = l.seed ~= nil and ("seed " .. tostring(l.seed)) or "trials" }
        by_seed[sp] = s
      end
      s.x[#s.x + 1], s.y[#s.y + 1] = xof(v), l.metric
      s.titles[#s.titles + 1] = string.format("#%s %s: %s %s", tostring(l.index), values_text(l, d.keys), d.metric, fmt(l.metric))
      local k = jkey(v)
      at[k] = at[k] or { v = v, ys = {} }
      table.insert(at[k].ys, l.metric)
    end
  end
  for sp = 1, ns do if by_seed[sp] then series[#series + 1] = by_seed[sp] end end
  local mx, my, me, repeated = {}, {}, {}, false
  local binned = info.numeric and #info.distinct > 12
  if binned then
    -- many values (a random search): the mean of each fifth of the trials, at its middle value
    local done = {}
    for _, l in ipairs(d.lines) do if l.metric and get(l) ~= nil then done[#done + 1] = l end end
    local labels, of = grouping(done, get)
    for g = 1, #labels do
      local ys, xs = {}, {}
      for i, l in ipairs(done) do if of[i] == g then ys[#ys + 1] = l.metric; xs[#xs + 1] = get(l) end end
      if #ys > 0 then
        table.sort(xs)
        local m, s = mean_std(ys)
        mx[#mx + 1], my[#my + 1], me[#me + 1] = xs[math.floor((#xs + 1) / 2)], m, s or 0 / 0
        repeated = repeated or #ys > 1
      end
    end
  else
    for _, v in ipairs(info.distinct) do
      local a = at[jkey(v)]
      if a then
        local m, s = mean_std(a.ys)
        mx[#mx + 1], my[#my + 1], me[#me + 1] = xof(v), m, s or 0 / 0
        if #a.ys > 1 then repeated = true end
      end
    end
  end
  if repeated then
    series[#series + 1] = { x = mx, y = my, err = me, fg = true, points = true, line = info.numeric, radius = 3.5,
      label = binned and "fifths: mean \194\177 std" or "mean \194\177 std",
      titles = (function()
        local t = {}
        for i = 1, #mx do t[i] = string.format("%s=%s: mean %s \194\177 %s", key, cats and cats[mx[i]] or html.value_text(mx[i]), fmt(my[i]),
          finite(me[i]) and fmt(me[i]) or "-") end
        return t
      end)() }
  end
  return plot.svg(series, { id = "plot-metric-" .. html.slug(key), inline = true, width = 560, height = 320,
    title = d.metric .. " against " .. key, xlabel = key .. (info.log and " (log scale)" or ""), ylabel = d.metric,
    log_x = info.log, x_categories = cats, data = { key = key }, pad_x = 0.06 })
end

local function parallel_plot(d)
  local axes = {}
  for _, k in ipairs(d.keys) do
    local get = function(l) return l.values[k] end
    local info = key_info(d.lines, get)
    local a = { label = k, values = {} }
    for i, l in ipairs(d.lines) do a.values[i] = get(l) end
    if info.numeric then a.log = info.log else a.categories = info.distinct end
    axes[#axes + 1] = a
  end
  local seeds = seed_info(d)
  if #seeds > 1 then
    local a = { label = "seed", values = {}, categories = seeds }
    for i, l in ipairs(d.lines) do a.values[i] = l.seed end
    axes[#axes + 1] = a
  end
  local m = { label = d.metric, values = {} }
  local color, titles, attrs, order = {}, {}, {}, {}
  for i, l in ipairs(d.lines) do
    m.values[i] = l.metric
    color[i] = l.metric
    titles[i] = string.format("#%s %s %s: %s", tostring(l.index), l.status or "?", values_text(l, d.keys),
      l.metric and (d.metric .. " " .. fmt(l.metric)) or "no " .. d.metric)
    attrs[i] = string.format(' data-trial="%s"', esc(l.index))
    order[i] = i
  end
  axes[#axes + 1] = m
  local sign = d.mode == "min" and -1 or 1
  table.sort(order, function(a, b) -- the best on top, trials without the metric below
    local x, y = color[a], color[b]
    if (x == nil) ~= (y == nil) then return x == nil end
    if x and x ~= y then return sign * x < sign * y end
    return a < b
  end)
  return plot.parallel(axes, { id = "plot-parallel", inline = true, width = math.max(640, 150 * #axes), height = 380,
    color = color, titles = titles, attrs = attrs, order = order,
    title = "every trial: its values and " .. d.metric })
end

-- the grouping options of the learning curves: each swept key, then the seed
local function grouping_options(d)
  local opts = {}
  for _, k in ipairs(d.keys) do
    local get = function(l) return l.values[k] end
    local labels, of = grouping(d.lines, get)
    opts[#opts + 1] = { name = k, labels = labels, of = of }
  end
  local seeds = seed_info(d)
  if #seeds > 1 then
    local labels, of = grouping(d.lines, function(l) return l.seed end)
    opts[#opts + 1] = { name = "seed", labels = labels, of = of }
  end
  if #opts == 0 then
    local of = {}
    for i in ipairs(d.lines) do of[i] = 1 end
    opts[1] = { name = "(none)", labels = { "all trials" }, of = of }
  end
  return opts
end

local function curves_plot(d, field, id, title, opts, default)
  local series = {}
  local maxn = 0
  for _, l in ipairs(d.lines) do maxn = math.max(maxn, #l.curves) end
  local few = maxn <= 3
  for i, l in ipairs(d.lines) do
    local xs, ys = {}, {}
    for _, e in ipairs(l.curves) do
      if e[field] ~= nil then xs[#xs + 1], ys[#ys + 1] = e.epoch + 1, type(e[field]) == "number" and e[field] or 0 / 0 end
    end
    if #ys > 0 then
      local cls = {}
      for o, op in ipairs(opts) do cls[o] = "k" .. (((op.of[i] or 8) - 1) % 10 + 1) end
      series[#series + 1] = { x = xs, y = ys, color_index = opts[default].of[i] or 8, width = 1.2, opacity = 0.5, points = few, line = true,
        radius = 2.5, title = string.format("#%s %s", tostring(l.index), values_text(l, d.keys)),
        attrs = string.format(' data-groups="%s" data-trial="%s"', table.concat(cls, " "), esc(l.index)) }
    end
  end
  if #series == 0 then
    return plot.no_data { id = id, inline = true, title = title, width = 620, height = 340, kind = "xy" }
  end
  for o, op in ipairs(opts) do
    for g = 1, #op.labels do
      local sum, cnt = {}, {}
      for i, l in ipairs(d.lines) do
        if op.of[i] == g then
          for _, e in ipairs(l.curves) do
            local v = e[field]
            if finite(v) then sum[e.epoch + 1] = (sum[e.epoch + 1] or 0) + v; cnt[e.epoch + 1] = (cnt[e.epoch + 1] or 0) + 1 end
          end
        end
      end
      local xs = util.sorted_keys(sum)
      local ys = {}
      for j, x in ipairs(xs) do ys[j] = sum[x] / cnt[x] end
      if #xs > 0 then
        series[#series + 1] = { x = xs, y = ys, color_index = g, width = 3, points = few, line = true, radius = 4,
          title = string.format("mean of %s = %s", op.name, op.labels[g]),
          attrs = string.format(' data-option="%d"%s', o - 1, o == default and "" or ' display="none"') }
      end
    end
  end
  return plot.svg(series, { id = id, inline = true, width = 620, height = 340, title = title, xlabel = "epoch", ylabel = field,
    legend = false, max_points = 200, x_integer = true })
end

local function importance(d)
  local ys = {}
  for i, l in ipairs(d.lines) do if l.metric then ys[i] = l.metric end end
  local rows = {}
  for _, k in ipairs(d.keys) do
    local get = function(l) return l.values[k] end
    local labels, of = grouping(d.lines, get)
    local e, groups, n = M.eta_squared(ys, of)
    rows[#rows + 1] = { key = k, eta = e, groups = groups or #labels, n = n or 0 }
  end
  table.sort(rows, function(a, b)
    if (a.eta == nil) ~= (b.eta == nil) then return a.eta ~= nil end
    if a.eta and a.eta ~= b.eta then return a.eta > b.eta end
    return a.key < b.key
  end)
  local seeds = seed_info(d)
  if #seeds > 1 then
    local _, of = grouping(d.lines, function(l) return l.seed end)
    local e, groups, n = M.eta_squared(ys, of)
    rows[#rows + 1] = { key = "seed", eta = e, groups = groups or #seeds, n = n or 0, reference = true }
  end
  return rows
end

local function importance_section(d, rows)
  local trs = {}
  for _, r in ipairs(rows) do
    trs[#trs + 1] = { attrs = string.format(' data-key="%s"%s', esc(r.key), r.reference and ' class="same"' or ""),
      cells = { html.cell(r.key .. (r.reference and " (reference)" or "")), html.cell(r.eta, { text = r.eta and string.format("%.3f", r.eta) or "-" }),
        html.cell(r.groups), html.cell(r.n) } }
  end
  local labels, vals = {}, {}
  for i, r in ipairs(rows) do labels[i] = r.key .. (r.reference and " (reference)" or ""); vals[i] = r.eta or 0 / 0 end
  local out = { '<div class="grid">' }
  out[#out + 1] = html.figure(plot.hbars(labels, vals, { id = "plot-importance", inline = true, max = 1, width = 560,
    title = "share of " .. d.metric .. "'s variance explained (eta\194\178)", fmt = function(v) return string.format("%.3f", v) end }))
  out[#out + 1] = "<div>" .. html.table { id = "table-importance", columns = { { label = "swept value" }, { label = "eta\194\178" },
    { label = "groups" }, { label = "trials" } }, rows = trs, sortable = true } .. "</div></div>"
  out[#out + 1] = string.format([[<p id="importance-method" class="method"><b>Method.</b> For each swept key the finished
trials are grouped by that key's value (a key with more than 8 distinct values is cut into 5 bins of about equal count), and
eta&#178; = &#931;<sub>g</sub> n<sub>g</sub> (&#563;<sub>g</sub> &#8722; &#563;)&#178; / &#931;<sub>i</sub> (y<sub>i</sub> &#8722; &#563;)&#178;
is the share of the variance of %s over all finished trials that the group means explain: the effect size of a one-way
analysis of variance. 1: the key alone decides the metric; 0: every group has the same mean. Each key is judged alone,
averaged over the others, so interactions are not separated; with few trials in a group eta&#178; is biased upwards
%s.</p>]], esc(d.metric), #seed_info(d) > 1 and "(the seed row shows what chance alone reaches here)" or "")
  return table.concat(out, "\n")
end

local function failed_section(d)
  local rows, logs = {}, {}
  for _, l in ipairs(d.lines) do
    if l.status ~= "done" then
      local why = l.reason or ""
      if l.status == "stopped" then
        why = string.format("stopped by successive halving after epoch %s%s", tostring(l.stopped_at or "?"),
          finite(l.rung_metric) and string.format(" (%s %s at the rung)", d.metric, fmt(l.rung_metric)) or "")
      elseif why == "" then
        why = ({ running = "running", pending = "not started yet", paused = "paused at a rung", interrupted = "interrupted: rerun the sweep to resume it" })[l.status] or ""
      end
      rows[#rows + 1] = { attrs = string.format(' data-trial="%s" data-status="%s"', esc(l.index), esc(l.status or "")),
        cells = { html.cell(l.index), html.cell(l.status, { class = "st-" .. html.slug(l.status or "unknown") }), html.cell(l.folder),
          html.cell(why, { class = "wrap" }), html.cell(l.exit_status), html.cell(l.attempts) } }
      if l.log_tail and l.log_tail ~= "" then
        logs[#logs + 1] = string.format("<details><summary>#%s %s: the end of its log</summary><pre>%s</pre></details>", esc(l.index),
          esc(l.folder or ""), esc(l.log_tail))
      end
    end
  end
  if #rows == 0 then rows[1] = { cells = { '<td colspan="6" class="meta">none: every trial finished</td>' } } end
  local out = { html.table { id = "table-failed", columns = { { label = "#" }, { label = "status" }, { label = "folder" },
    { label = "reason" }, { label = "exit status" }, { label = "attempts" } }, rows = rows, sortable = true } }
  out[#out + 1] = table.concat(logs, "\n")
  return table.concat(out, "\n")
end

---------------------------------------------------------------- the page
function M.render(d)
  local counts = {}
  for _, l in ipairs(d.lines) do counts[l.status or "unknown"] = (counts[l.status or "unknown"] or 0) + 1 end
  local open = (counts.running or 0) + (counts.pending or 0) + (counts.paused or 0) + (counts.interrupted or 0)
  local state = #d.lines == 0 and "unknown" or (open > 0 and "running" or ((counts.failed or 0) > 0 and "failed" or "done"))
  local parts = {}
  parts[#parts + 1] = string.format("<h1>sweep %s</h1>", esc(d.name))
  local cparts = {}
  for _, k in ipairs { "done", "failed", "stopped", "running", "paused", "interrupted", "pending" } do
    if counts[k] then cparts[#cparts + 1] = string.format("%d %s", counts[k], k) end
  end
  parts[#parts + 1] = string.format('<p><span id="sweep-status" class="status st-%s" data-status="%s">%s</span> %d trial%s: %s</p>',
    state, state, ({ done = "finished", failed = "finished, some failed", running = "in progress", unknown = "no results yet" })[state],
    #d.lines, #d.lines == 1 and "" or "s", esc(table.concat(cparts, ", ")))
  local rec = d.rec or {}
  local meta = { "folder " .. d.dir }
  if rec.recipe then meta[#meta + 1] = "recipe " .. tostring(rec.recipe) end
  if rec.file then meta[#meta + 1] = "sweep file " .. tostring(rec.file) end
  meta[#meta + 1] = string.format("metric %s (%s is better)", d.metric, d.mode == "min" and "lower" or "higher")
  parts[#parts + 1] = '<p class="meta">' .. esc(table.concat(meta, " \194\183 ")) .. "</p>"
  local groups = configurations(d)
  local best = groups[1]
  if best and best.mean then
    local vals = {}
    for _, k in ipairs(d.keys) do if best.values[k] ~= nil then vals[#vals + 1] = k .. "=" .. html.value_text(best.values[k]) end end
    parts[#parts + 1] = string.format('<p id="best"><b>best:</b> %s: %s <b>%s</b>%s over %d seed%s</p>', esc(#vals > 0 and table.concat(vals, " ") or "the recipe as it is"),
      esc(d.metric), fmt(best.mean), best.std and (" \194\177 " .. fmt_std(best.mean, best.std)) or "", #best.xs, #best.xs == 1 and "" or "s")
    if rec.recipe then
      local spec = require "visreg.sweep.spec"
      local cmd = { "visreg train", util.shell_quote(rec.recipe) }
      for _, kv in ipairs(rec.set or {}) do cmd[#cmd + 1] = "--set " .. util.shell_quote(kv[1] .. "=" .. spec.set_text(kv[2])) end
      for _, k in ipairs(d.keys) do
        if best.values[k] ~= nil then cmd[#cmd + 1] = "--set " .. util.shell_quote(k .. "=" .. spec.set_text(best.values[k])) end
      end
      if best.seeds[1] ~= nil then cmd[#cmd + 1] = "--set seed=" .. tostring(best.seeds[1]) end
      parts[#parts + 1] = "<p class=\"meta\">rerun it: <code>" .. esc(table.concat(cmd, " ")) .. "</code></p>"
    end
  end
  parts[#parts + 1] = '<p class="noprint"><a href="#configurations">configurations</a> \194\183 <a href="#values">the metric against each value</a> \194\183 ' ..
    '<a href="#curves">learning curves</a> \194\183 <a href="#importance">importance</a> \194\183 <a href="#trials">trials</a> \194\183 <a href="#failed">failed and stopped</a></p>'
  local nkeys = number_keys(d)
  parts[#parts + 1] = '<h2 id="configurations">Configurations</h2><p class="meta">Trials that differ only in their seed, with the mean and ' ..
    "the sample standard deviation over the seeds that finished; click a header to sort.</p>" .. configs_table(d, groups, nkeys)
  local plots = {}
  for _, k in ipairs(d.keys) do
    plots[#plots + 1] = html.figure(metric_plot(d, k), "A point per finished trial (colour: its seed); in the text colour the mean and " ..
      "standard deviation of each value (of each fifth of the trials, at its median value, where a key has more than 12 values).")
  end
  if #plots == 0 then plots[1] = html.figure(plot.no_data { id = "plot-metric", inline = true, title = "no swept value", width = 560, height = 200 }) end
  parts[#parts + 1] = '<h2 id="values">The metric against each swept value</h2><div class="grid">' .. table.concat(plots, "\n") .. "</div>"
  parts[#parts + 1] = html.figure(parallel_plot(d), "A line per trial through its values; the colour is the metric (dashed grey: no metric: " ..
    "failed, stopped or unfinished). Hover a line or a row of the trials table to pick it out.")
  -- learning curves
  local opts = grouping_options(d)
  local imp = importance(d)
  local default = 1
  if imp[1] and imp[1].eta and not imp[1].reference then
    for o, op in ipairs(opts) do if op.name == imp[1].key then default = o end end
  end
  local sel = {}
  for o, op in ipairs(opts) do sel[#sel + 1] = string.format('<option value="%d"%s>%s</option>', o - 1, o == default and " selected" or "", esc(op.name)) end
  local legends = {}
  for o, op in ipairs(opts) do
    local items = {}
    for g, lab in ipairs(op.labels) do items[g] = { class = "k" .. ((g - 1) % 10 + 1), label = op.name .. " = " .. lab } end
    legends[#legends + 1] = html.legend(items, string.format(' data-option="%d"%s', o - 1, o == default and "" or " hidden"))
  end
  local any_probe = false
  for _, l in ipairs(d.lines) do for _, e in ipairs(l.curves) do if e.online_probe ~= nil then any_probe = true end end end
  local curve_svgs = { html.figure(curves_plot(d, "loss", "plot-curves-loss", "training loss per epoch", opts, default)) }
  if any_probe then
    curve_svgs[#curve_svgs + 1] = html.figure(curves_plot(d, "online_probe", "plot-curves-online-probe", "online probe accuracy per epoch", opts, default))
  end
  parts[#parts + 1] = string.format('<h2 id="curves">Learning curves</h2><div id="plot-curves"><p class="controls">colour by <select id="select-grouping" ' ..
    'data-grouping="plot-curves" aria-label="group the curves by">%s</select> <span class="meta">thin: each trial (hover for its values); bold: the mean of each group</span></p>%s' ..
    '<div class="grid">%s</div></div>', table.concat(sel), table.concat(legends), table.concat(curve_svgs, "\n"))
  parts[#parts + 1] = '<h2 id="importance">Which values matter</h2>' .. importance_section(d, imp)
  parts[#parts + 1] = '<h2 id="trials">Trials</h2><p class="meta">Every line of results.jsonl; a trial\'s number opens its own page.</p>' .. results_table(d, nkeys)
  parts[#parts + 1] = '<h2 id="failed">Failed, stopped and unfinished trials</h2>' .. failed_section(d)
  local page = html.page { title = "visreg sweep " .. d.name, body = table.concat(parts, "\n"), kind = "sweep", dir = d.dir,
    version = require("visreg").version }
  return (page:gsub('<body data%-report="sweep">', string.format('<body data-report="sweep" data-status="%s" data-metric="%s">', state, esc(d.metric)), 1))
end

function M.write(dir, o)
  o = o or {}
  local d = M.read(dir)
  local text = M.render(d)
  local path = o.path or (d.dir .. "/report.html")
  html.write(path, text)
  return path, #text
end

-- each trial's own page
function M.write_trials(dir)
  local d = M.read(dir)
  local run = require "visreg.report.run"
  local n = 0
  for _, l in ipairs(d.lines) do
    local tdir = type(l.folder) == "string" and (d.dir .. "/" .. l.folder)
    if tdir and (util.file_exists(tdir .. "/run.json") or util.file_exists(tdir .. "/trial.json")) then
      run.write(tdir)
      n = n + 1
    end
  end
  return n
end

return M
