-- visreg.plot: pictures of numbers without a dependency, in the terminal (Unicode braille and
-- block characters) and as SVG, in files for a paper and inline in the HTML reports
-- (visreg.report): the one plotting module of the REPL and the reports.
--
--   plot.ticks(lo, hi, n)             "nice" tick values (1, 2, 5 x 10^k) covering [lo, hi]
--   plot.log_ticks(lo, hi)            powers of ten in [lo, hi] (1, 2, 5 x 10^k within a decade)
--   plot.scale(lo, hi, a, b, log)     a function mapping [lo, hi] to [a, b], linear or log10
--   plot.line(ys, o)                  a curve as text: o.xs, o.log_y, o.width, o.height, o.title
--   plot.hist(values, o)              a histogram as text: o.bins, o.width, o.height, o.title
--   plot.bars(labels, values, o)      horizontal bars as text
--   plot.svg(series, o)               lines, points and error bars with a legend: series = {{x =,
--                                     y =, label =, points = true, err =, faint = true}, ...};
--                                     o.title, o.xlabel, o.ylabel, o.log_x, o.log_y,
--                                     o.x_categories, o.id; o.path writes it (and o.csv the data)
--   plot.heatmap(rows, o)             a matrix as coloured cells with a colour scale
--   plot.hbars(labels, values, o)     horizontal bars as SVG
--   plot.parallel(axes, o)            parallel coordinates, lines coloured by a value
--   plot.decimate(xs, ys, n)          a long curve in at most n points (extremes kept)
--   plot.smooth(ys, span)             a centred moving average
--   plot.colormap(t), plot.css()      viridis; the stylesheet of plots in a page (light, dark, print)
-- Values may be Lua lists or 1-D tensors; non-finite values are left out of every path, and a plot
-- with nothing to draw says "no data" (data-empty="true" on its <svg>).
local bit = require "bit"
local tensor = require "visreg.tensor"
local util = require "visreg.util"

local M = {}

local function as_list(v)
  if tensor.is_tensor(v) then return v:detach():to("cpu"):to("f64"):reshape(-1):to_list() end
  return v
end
local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end

---------------------------------------------------------------- axes
function M.ticks(lo, hi, n)
  n = n or 5
  if not (finite(lo) and finite(hi)) then return {} end
  if hi < lo then lo, hi = hi, lo end
  if hi == lo then return { lo } end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log10(raw))
  -- the 1, 2, 5 or 10 step whose tick count comes nearest to n
  local step, best = mag, math.huge
  for _, m in ipairs { 1, 2, 5, 10 } do
    local miss = math.abs((hi - lo) / (m * mag) - n)
    if miss < best then step, best = m * mag, miss end
  end
  local out = {}
  local first = math.ceil(lo / step - 1e-9) * step
  for v = first, hi + step * 1e-9, step do
    out[#out + 1] = math.abs(v) < step * 1e-9 and 0 or tonumber(string.format("%.12g", v))
  end
  return out
end

-- ticks of a log axis over [lo, hi] (both > 0): the powers of ten inside (every k-th past 8 of
-- them); with fewer than 3 of them 1, 2 and 5 times powers of ten (when that makes 2 to 7
-- ticks), and within less than that a linear choice
function M.log_ticks(lo, hi)
  if not (finite(lo) and finite(hi)) or lo <= 0 or hi <= 0 then return {} end
  if hi < lo then lo, hi = hi, lo end
  local e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
  local function inside(v) return v >= lo * (1 - 1e-9) and v <= hi * (1 + 1e-9) end
  local out = {}
  for e = e0, e1 do
    local v = tonumber(string.format("%.12g", 10 ^ e))
    if inside(v) then out[#out + 1] = v end
  end
  if #out > 8 then
    local k, thin = math.ceil(#out / 6), {}
    for _, v in ipairs(out) do
      if math.floor(math.log10(v) + 0.5) % k == 0 then thin[#thin + 1] = v end
    end
    return thin
  end
  if #out >= 3 then return out end
  local powers = out
  out = {}
  for e = e0 - 1, e1 do
    for _, m in ipairs { 1, 2, 5 } do
      local v = tonumber(string.format("%.12g", m * 10 ^ e))
      if inside(v) then out[#out + 1] = v end
    end
  end
  if #out >= 2 and #out <= 7 then return out end
  if #powers >= 2 then return powers end
  if #out >= 2 then return out end
  out = {}
  for _, v in ipairs(M.ticks(lo, hi, 4)) do if v > 0 then out[#out + 1] = v end end
  return out
end

function M.scale(lo, hi, a, b, log)
  if log then lo, hi = math.log10(lo), math.log10(hi) end
  local span = hi - lo
  if span == 0 then span = 1 end
  return function(v)
    if log then v = math.log10(v) end
    return a + (v - lo) / span * (b - a)
  end
end

-- the finite range of lists (positive values only on a log axis)
local function range(lists, log)
  local lo, hi = math.huge, -math.huge
  for _, l in ipairs(lists) do
    for _, v in ipairs(l) do
      if finite(v) and (not log or v > 0) then lo, hi = math.min(lo, v), math.max(hi, v) end
    end
  end
  if lo > hi then return nil end
  if lo == hi then
    if log then lo, hi = lo / 2, hi * 2 else lo, hi = lo - 0.5, hi + 0.5 end
  end
  return lo, hi
end
M.range = range

local function fmt(v)
  if v == 0 then return "0" end
  local a = math.abs(v)
  if a >= 1e4 or a < 1e-3 then return string.format("%.0e", v):gsub("e%+?(%-?)0*(%d)", "e%1%2") end
  return (string.format("%.4g", v))
end
M.fmt = fmt

---------------------------------------------------------------- the terminal
-- braille: each character holds 2 x 4 dots
local BRAILLE = { { 0x01, 0x08 }, { 0x02, 0x10 }, { 0x04, 0x20 }, { 0x40, 0x80 } }
local function utf8(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

function M.line(ys, o)
  o = o or {}
  ys = as_list(ys)
  local xs = as_list(o.xs) or {}
  if #xs == 0 then for i = 1, #ys do xs[i] = i end end
  local W, H = o.width or 60, o.height or 12
  local ylo, yhi = range({ ys }, o.log_y)
  local xlo, xhi = range({ xs }, o.log_x)
  if not ylo or not xlo then return (o.title and o.title .. "\n" or "") .. "(no finite values)" end
  local sx, sy = M.scale(xlo, xhi, 0, W * 2 - 1, o.log_x), M.scale(ylo, yhi, H * 4 - 1, 0, o.log_y)
  local cells = {}
  for r = 1, H do cells[r] = {} for c = 1, W do cells[r][c] = 0 end end
  local function dot(px, py)
    px, py = math.floor(px + 0.5), math.floor(py + 0.5)
    if px < 0 or py < 0 or px >= W * 2 or py >= H * 4 then return end
    local r, c = math.floor(py / 4) + 1, math.floor(px / 2) + 1
    cells[r][c] = bit.bor(cells[r][c], BRAILLE[py % 4 + 1][px % 2 + 1])
  end
  local prev
  for i = 1, #ys do
    local x, y = xs[i], ys[i]
    if finite(x) and finite(y) and (not o.log_y or y > 0) and (not o.log_x or x > 0) then
      local px, py = sx(x), sy(y)
      if prev then -- join to the previous point so the curve is continuous
        local steps = math.max(math.abs(px - prev[1]), math.abs(py - prev[2]), 1)
        for s = 1, steps do dot(prev[1] + (px - prev[1]) * s / steps, prev[2] + (py - prev[2]) * s / steps) end
      else
        dot(px, py)
      end
      prev = { px, py }
    else
      prev = nil
    end
  end
  local top, bottom = fmt(yhi), fmt(ylo)
  local lw = math.max(#top, #bottom)
  local out = {}
  if o.title then out[#out + 1] = o.title .. (o.log_y and " (log scale)" or "") end
  for r = 1, H do
    local label = r == 1 and top or (r == H and bottom or "")
    local row = {}
    for c = 1, W do row[c] = cells[r][c] == 0 and " " or utf8(0x2800 + cells[r][c]) end
    out[#out + 1] = string.rep(" ", lw - #label) .. label .. " |" .. table.concat(row)
  end
  out[#out + 1] = string.rep(" ", lw) .. " +" .. string.rep("-", W)
  local xl, xr = fmt(xlo), fmt(xhi)
  out[#out + 1] = string.rep(" ", lw + 2) .. xl .. string.rep(" ", math.max(1, W - #xl - #xr)) .. xr
  return table.concat(out, "\n")
end

local BLOCKS = { " ", "\226\150\129", "\226\150\130", "\226\150\131", "\226\150\132", "\226\150\133", "\226\150\134",
  "\226\150\135", "\226\150\136" } -- U+2581..U+2588, eighths of a cell

function M.hist(values, o)
  o = o or {}
  values = as_list(values)
  local lo, hi = range({ values })
  if not lo then return "(no finite values)" end
  local bins, H = o.bins or 40, o.height or 8
  local counts = {}
  for b = 1, bins do counts[b] = 0 end
  for _, v in ipairs(values) do
    if finite(v) then
      local b = math.min(bins, math.floor((v - lo) / (hi - lo) * bins) + 1)
      counts[b] = counts[b] + 1
    end
  end
  local maxc = 0
  for _, c in ipairs(counts) do maxc = math.max(maxc, c) end
  local out = {}
  if o.title then out[#out + 1] = o.title end
  for r = H, 1, -1 do
    local row = {}
    for b = 1, bins do
      local fill = counts[b] / math.max(maxc, 1) * H - (r - 1) -- cells of this bar at or above row r
      row[b] = BLOCKS[math.max(0, math.min(8, math.floor(fill * 8 + 0.5))) + 1]
    end
    out[#out + 1] = "|" .. table.concat(row)
  end
  out[#out + 1] = "+" .. string.rep("-", bins)
  local l, r = fmt(lo), fmt(hi)
  out[#out + 1] = " " .. l .. string.rep(" ", math.max(1, bins - #l - #r)) .. r .. string.format("  (%d values, max %d a bin)", #values, maxc)
  return table.concat(out, "\n")
end

function M.bars(labels, values, o)
  o = o or {}
  values = as_list(values)
  local W = o.width or 40
  local maxv, lw = 0, 0
  for i, v in ipairs(values) do
    if finite(v) then maxv = math.max(maxv, math.abs(v)) end
    lw = math.max(lw, #tostring(labels[i]))
  end
  local out = {}
  if o.title then out[#out + 1] = o.title end
  for i, v in ipairs(values) do
    local n = finite(v) and math.floor(math.abs(v) / math.max(maxv, 1e-300) * W * 8 + 0.5) or 0
    local bar = string.rep(BLOCKS[9], math.floor(n / 8)) .. (n % 8 > 0 and BLOCKS[n % 8 + 1] or "")
    local label = tostring(labels[i])
    out[#out + 1] = string.format("%s%s %s %s", label, string.rep(" ", lw - #label), bar, fmt(v))
  end
  return table.concat(out, "\n")
end

---------------------------------------------------------------- SVG
-- Every SVG reads on its own (presentation attributes: dark marks on white) and carries classes
-- that a page's stylesheet (plot.css()) restyles for light, dark and print: svg.vp (the root),
-- .bg (background), .fr (frame), .gr (grid), .fg (marks in the text colour), .k1 .. .k10 (series
-- colours: a <g color=...> whose marks are drawn in currentColor), .dim, .nodata.
local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" }
M.COLORS = COLORS
-- the same hues, lighter, for a dark background
local DARK_COLORS = { "#5aa9e6", "#ff6b6b", "#5cd65c", "#ffa64d", "#b794f6", "#c8a098", "#f7a6d8", "#b0b0b0", "#dbdb5c", "#4dd8e6" }

local function esc(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;")) end
M.esc = esc

-- a coordinate: one decimal at most
local function num(v)
  local s = string.format("%.1f", v)
  if s == "-0.0" then return "0" end
  return (s:gsub("%.0$", ""))
end
M.num = num

-- the width of a text in pixels, roughly (sans-serif, 12 px: 0.6 em a character)
local function text_width(s, size) return #tostring(s) * (size or 12) * 0.6 end
local function clip(s, n)
  s = tostring(s)
  if #s <= n then return s end
  return s:sub(1, n - 1) .. "\226\128\166" -- an ellipsis
end

-- viridis, from dark blue-violet (0) to yellow (1); colormap(t) trims both ends a little so that
-- every colour stands out on a white and on a dark background
local VIRIDIS = { { 68, 1, 84 }, { 72, 36, 117 }, { 65, 68, 135 }, { 53, 95, 141 }, { 42, 120, 142 }, { 33, 145, 140 },
  { 34, 168, 132 }, { 68, 191, 112 }, { 122, 209, 81 }, { 189, 223, 38 }, { 253, 231, 37 } }
function M.colormap(t, full)
  if not finite(t) then return "#999999" end
  t = math.max(0, math.min(1, t))
  if not full then t = 0.1 + 0.78 * t end
  local p = t * (#VIRIDIS - 1)
  local i = math.min(#VIRIDIS - 2, math.floor(p))
  local f = p - i
  local a, b = VIRIDIS[i + 1], VIRIDIS[i + 2]
  return string.format("#%02x%02x%02x", math.floor(a[1] + (b[1] - a[1]) * f + 0.5), math.floor(a[2] + (b[2] - a[2]) * f + 0.5),
    math.floor(a[3] + (b[3] - a[3]) * f + 0.5))
end

-- the stylesheet of plots in a page: theme colours as CSS variables (light, dark through
-- prefers-color-scheme, light again on paper) and the classes above
function M.css()
  local function vars(fg, bg, pbg, grid, frame, muted, ks)
    local t = { string.format("--fg:%s;--bg:%s;--plot-bg:%s;--grid:%s;--frame:%s;--muted:%s", fg, bg, pbg, grid, frame, muted) }
    for i, c in ipairs(ks) do t[#t + 1] = string.format("--k%d:%s", i, c) end
    return table.concat(t, ";")
  end
  local light = vars("#1d1d1f", "#ffffff", "#ffffff", "#e4e4e7", "#8a8a90", "#6b6b70", COLORS)
  local dark = vars("#e4e4e7", "#15171b", "#1d2025", "#32363d", "#6f737a", "#a3a3aa", DARK_COLORS)
  local rules = {
    ":root{" .. light .. "}",
    "@media (prefers-color-scheme:dark){:root{" .. dark .. "}}",
    "@media print{:root{" .. light .. "}}",
    "svg.vp{fill:var(--fg);color:var(--fg);max-width:100%;height:auto}",
    "svg.vp .bg{fill:var(--plot-bg)}svg.vp .gr{stroke:var(--grid)}svg.vp .fr{stroke:var(--frame)}",
    "svg.vp .fg{color:var(--fg)}svg.vp .dim{stroke:var(--muted);color:var(--muted)}svg.vp .nodata{fill:var(--muted)}",
    "svg.vp .halo{stroke:var(--plot-bg)}",
  }
  for i = 1, #COLORS do rules[#rules + 1] = string.format("svg.vp .k%d{color:var(--k%d)}", i, i) end
  return table.concat(rules, "\n")
end

-- a long curve in at most n points: the first and last point of each bucket of indices and its
-- lowest and highest, in order, so that spikes survive. xs, ys: lists (gaps: non-finite values
-- are kept where they fall, as breaks)
function M.decimate(xs, ys, n)
  n = math.max(4, n or 400)
  local m = #ys
  if m <= n then return xs, ys end
  local buckets = math.max(1, math.floor(n / 4))
  local ox, oy = {}, {}
  local function add(k) if k then ox[#ox + 1], oy[#oy + 1] = xs[k], ys[k] end end
  for b = 0, buckets - 1 do
    local i0 = math.floor(b * m / buckets) + 1
    local i1 = math.floor((b + 1) * m / buckets)
    local lo, hi, gap
    for k = i0, i1 do
      local y = ys[k]
      if finite(y) then
        if not lo or y < ys[lo] then lo = k end
        if not hi or y > ys[hi] then hi = k end
      else
        gap = gap or k
      end
    end
    local keep = { i0, i1 }
    for _, k in ipairs { lo or i0, hi or i0, gap or i0 } do keep[#keep + 1] = k end
    table.sort(keep)
    local last
    for _, k in ipairs(keep) do if k ~= last then add(k); last = k end end
  end
  return ox, oy
end

-- a centred moving average over about span points (default: a 30th of the list, at least 3),
-- narrower at the ends, skipping non-finite values (which stay gaps): no lag behind the data
function M.smooth(ys, span)
  ys = as_list(ys)
  local n = #ys
  local h = math.max(1, math.floor((span or math.max(3, n / 30)) / 2))
  local cs, cn = { [0] = 0 }, { [0] = 0 }
  for i = 1, n do
    local y = ys[i]
    cs[i] = cs[i - 1] + (finite(y) and y or 0)
    cn[i] = cn[i - 1] + (finite(y) and 1 or 0)
  end
  local out = {}
  for i = 1, n do
    if finite(ys[i]) then
      local w = math.min(h, i - 1, n - i) -- symmetric, so the ends are not pulled inwards
      local a, b = i - w - 1, i + w
      out[i] = (cs[b] - cs[a]) / (cn[b] - cn[a])
    else
      out[i] = 0 / 0
    end
  end
  return out
end

-- the root element; kind names the plot (data-kind), empty marks a plot without data
local function svg_root(W, H, o, kind, empty)
  local a = { "<svg" }
  if not o.inline then a[#a + 1] = ' xmlns="http://www.w3.org/2000/svg"' end
  if o.id then a[#a + 1] = string.format(' id="%s"', esc(o.id)) end
  a[#a + 1] = string.format(' class="vp%s" data-kind="%s"', o.class and (" " .. esc(o.class)) or "", kind)
  if empty then a[#a + 1] = ' data-empty="true"' end
  for _, k in ipairs(util.sorted_keys(o.data or {})) do a[#a + 1] = string.format(' data-%s="%s"', k, esc(o.data[k])) end
  a[#a + 1] = string.format(' width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12" fill="#222"',
    W, H, W, H)
  a[#a + 1] = string.format(' role="img" aria-label="%s">', esc(o.title or kind))
  return table.concat(a)
end

local function finish(parts, o)
  parts[#parts + 1] = "</svg>"
  local text = table.concat(parts, "\n")
  if o.path then util.write_file(o.path, text .. "\n") end
  return text
end

-- an explicit "no data" in place of an empty plot
local function no_data(W, H, o, kind, why)
  local parts = { svg_root(W, H, o, kind, true), string.format('<rect class="bg" width="100%%" height="100%%" fill="white"/>') }
  if o.title then parts[#parts + 1] = string.format('<text x="%s" y="20" text-anchor="middle" font-size="14">%s</text>', num(W / 2), esc(o.title)) end
  parts[#parts + 1] = string.format('<rect class="fr" x="8" y="%d" width="%d" height="%d" fill="none" stroke="#888" stroke-dasharray="4 4"/>',
    o.title and 30 or 8, W - 16, H - (o.title and 38 or 16))
  parts[#parts + 1] = string.format('<text class="nodata" x="%s" y="%s" text-anchor="middle" fill="#666" font-size="14">no data%s</text>',
    num(W / 2), num(H / 2), why and (": " .. esc(why)) or "")
  return finish(parts, o)
end
M.no_data = function(o) o = o or {}; return no_data(o.width or 640, o.height or 400, o, o.kind or "empty", o.why) end

-- tick values of an axis: categories (1..n), log or linear
local function axis_ticks(lo, hi, log, n, cats)
  if cats then
    local t = {}
    for i = 1, #cats do t[i] = i end
    return t
  end
  if log then return M.log_ticks(lo, hi) end
  return M.ticks(lo, hi, n)
end

local function tick_label(v, cats) return cats and clip(cats[v], 14) or fmt(v) end

-- the padded range of an axis: a share of the span on each side (on a log axis, of the decades)
local function pad_range(lo, hi, log, share)
  if share <= 0 then return lo, hi end
  if log then
    local l, h = math.log10(lo), math.log10(hi)
    local p = (h - l) * share
    return 10 ^ (l - p), 10 ^ (h + p)
  end
  local p = (hi - lo) * share
  return lo - p, hi + p
end

-- plot.svg(series, o): lines, points and error bars on one pair of axes. A series is
-- { x =, y =, label =, points = true (markers, else a line), line = true (with points: both),
--   err = {half widths} (error bars), faint = true (thin and translucent), dash = true, radius =,
--   color = "#hex" (else the palette's colour k, k = s.color_index or the series' place),
--   fg = true (the text colour), jitter = pixels (points moved sideways), titles = {hover text of
--   each point} or one string, title = hover text of the series, opacity = of its line (or of
--   its points), width = of its line, attrs = ' data-x="..."' (on the series' group) }.
-- o: width, height, title, xlabel, ylabel, log_x, log_y, x_categories (x = 1..n are these
-- labels), xlim, ylim ({lo, hi}), pad_y (share of the span, default 0.04), pad_x (default 0), max_points (a longer
-- line is decimated, default 400), legend (false: none), id, class, data ({key = value}: data-
-- attributes of the root), inline (no xmlns: an SVG inside HTML), x_integer (whole x ticks
-- only), path (writes the file), csv.
-- Values may be Lua lists or 1-D tensors; non-finite values (and values <= 0 on a log axis) are
-- left out of every path (a break in a line). No drawable value gives an explicit "no data".
function M.svg(series, o)
  o = o or {}
  local W, H = o.width or 640, o.height or 400
  local cats = o.x_categories
  local function ok(x, y)
    return finite(x) and finite(y) and (not o.log_x or x > 0) and (not o.log_y or y > 0)
  end
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  local labels, drawable = {}, 0
  for _, s in ipairs(series) do
    s.y = as_list(s.y) or {}
    s.x = as_list(s.x)
    if not s.x then s.x = {} for k = 1, #s.y do s.x[k] = k end end
    local err = as_list(s.err)
    s.err = err
    for k = 1, #s.y do
      local x, y = s.x[k], s.y[k]
      if ok(x, y) then
        drawable = drawable + 1
        xlo, xhi = math.min(xlo, x), math.max(xhi, x)
        local e = err and finite(err[k]) and math.abs(err[k]) or 0
        local a, b = y - e, y + e
        if o.log_y and a <= 0 then a = y end
        ylo, yhi = math.min(ylo, a), math.max(yhi, b)
      end
    end
    if s.label ~= nil then labels[#labels + 1] = s end
  end
  if drawable == 0 then return no_data(W, H, o, "xy") end
  if cats then xlo, xhi = 0.5, #cats + 0.5 end
  if o.xlim then xlo, xhi = o.xlim[1], o.xlim[2] end
  if o.ylim then ylo, yhi = o.ylim[1], o.ylim[2] end
  if xlo == xhi then if o.log_x then xlo, xhi = xlo / 2, xhi * 2 else xlo, xhi = xlo - 0.5, xhi + 0.5 end end
  if ylo == yhi then if o.log_y then ylo, yhi = ylo / 2, yhi * 2 else ylo, yhi = ylo - 0.5, yhi + 0.5 end end
  if not o.ylim then ylo, yhi = pad_range(ylo, yhi, o.log_y, o.pad_y or 0.04) end
  if not o.xlim and not cats then xlo, xhi = pad_range(xlo, xhi, o.log_x, o.pad_x or 0) end
  local xt = axis_ticks(xlo, xhi, o.log_x, o.xticks or 6, cats)
  if o.x_integer and not cats and not o.log_x then -- counts (epochs): whole ticks only
    local whole = {}
    for _, t in ipairs(xt) do if t % 1 == 0 then whole[#whole + 1] = t end end
    if #whole < 2 and xhi - xlo <= 12 then
      whole = {}
      for t = math.ceil(xlo), math.floor(xhi) do whole[#whole + 1] = t end
    end
    if #whole > 0 then xt = whole end
  end
  local yt = axis_ticks(ylo, yhi, o.log_y, o.yticks or 5)
  local ytw = 0
  for _, t in ipairs(yt) do ytw = math.max(ytw, text_width(fmt(t))) end
  local legend = o.legend ~= false and #labels > 0
  local lw = 0
  if legend then for _, s in ipairs(labels) do lw = math.max(lw, text_width(clip(s.label, 24))) end end
  local ml = math.max(40, ytw + 14) + (o.ylabel and 18 or 0)
  local mr = legend and math.min(220, lw * 1.2 + 36) or 16 -- room for larger print text
  local mt, mb = o.title and 32 or 12, (o.xlabel and 48 or 32) + (cats and 6 or 0)
  local sx, sy = M.scale(xlo, xhi, ml, W - mr, o.log_x), M.scale(ylo, yhi, H - mb, mt, o.log_y)
  local parts = { svg_root(W, H, o, "xy"), '<rect class="bg" width="100%" height="100%" fill="white"/>' }
  if o.title then parts[#parts + 1] = string.format('<text x="%s" y="20" text-anchor="middle" font-size="14">%s</text>', num((ml + W - mr) / 2), esc(o.title)) end
  -- grid and ticks
  local grid, labels_t = {}, {}
  for _, t in ipairs(xt) do
    local x = sx(t)
    if x >= ml - 0.5 and x <= W - mr + 0.5 then
      grid[#grid + 1] = string.format("M%s,%dV%d", num(x), mt, H - mb)
      labels_t[#labels_t + 1] = string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', num(x), H - mb + 16, esc(tick_label(t, cats)))
    end
  end
  for _, t in ipairs(yt) do
    local y = sy(t)
    if y >= mt - 0.5 and y <= H - mb + 0.5 then
      grid[#grid + 1] = string.format("M%d,%sH%d", ml, num(y), W - mr)
      labels_t[#labels_t + 1] = string.format('<text x="%d" y="%s" text-anchor="end">%s</text>', ml - 6, num(y + 4), esc(fmt(t)))
    end
  end
  parts[#parts + 1] = string.format('<path class="gr" d="%s" fill="none" stroke="#ddd"/>', table.concat(grid))
  parts[#parts + 1] = string.format('<rect class="fr" x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>', ml, mt, W - ml - mr, H - mt - mb)
  parts[#parts + 1] = "<g>" .. table.concat(labels_t) .. "</g>"
  if o.xlabel then parts[#parts + 1] = string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', num((ml + W - mr) / 2), H - 12, esc(o.xlabel)) end
  if o.ylabel then
    parts[#parts + 1] = string.format('<text transform="translate(14,%s) rotate(-90)" text-anchor="middle">%s</text>', num((mt + H - mb) / 2), esc(o.ylabel))
  end
  local colors = o.colors or COLORS
  local function paint(s, i)
    if s.fg then return ' class="fg" color="#222"' end
    if s.color then return string.format(' color="%s"', s.color) end
    local k = ((s.color_index or i) - 1) % #colors + 1
    return string.format(' class="k%d" color="%s"', k, colors[k])
  end
  local max_points = o.max_points or 400
  for i, s in ipairs(series) do
    local g = { string.format("<g%s%s>", paint(s, i), s.attrs or "") }
    if s.title then g[#g + 1] = "<title>" .. esc(s.title) .. "</title>" end
    local jit = s.jitter or 0
    if not s.points or s.line then
      local xs, ys = s.x, s.y
      if #ys > max_points then xs, ys = M.decimate(xs, ys, max_points) end
      local d, pen = {}, "M"
      for k = 1, #ys do
        if ok(xs[k], ys[k]) then
          d[#d + 1] = (pen == "M" and (#d > 0 and " M" or "M") or "L") .. num(sx(xs[k]) + jit) .. "," .. num(sy(ys[k]))
          pen = "L"
        else
          pen = "M"
        end
      end
      if #d > 0 then
        local op = s.faint and 0.35 or (not s.points and s.opacity)
        g[#g + 1] = string.format('<path d="%s" fill="none" stroke="currentColor" stroke-width="%s"%s%s/>', table.concat(d),
          s.width or (s.faint and 1 or 1.8), op and string.format(' stroke-opacity="%s"', op) or "", s.dash and ' stroke-dasharray="5 3"' or "")
      end
    end
    if s.err then
      local d = {}
      for k = 1, #s.y do
        local x, y, e = s.x[k], s.y[k], s.err[k]
        if ok(x, y) and finite(e) then
          local px = sx(x) + jit
          local lo = y - math.abs(e)
          if o.log_y and lo <= 0 then lo = ylo end
          local y1, y2 = sy(lo), sy(y + math.abs(e))
          d[#d + 1] = string.format("M%s,%sV%sM%s,%sh8M%s,%sh8", num(px), num(y1), num(y2), num(px - 4), num(y1), num(px - 4), num(y2))
        end
      end
      if #d > 0 then g[#g + 1] = string.format('<path d="%s" fill="none" stroke="currentColor" stroke-width="1.5"/>', table.concat(d)) end
    end
    if s.points then
      local r = s.radius or 2.5
      for k = 1, #s.y do
        local x, y = s.x[k], s.y[k]
        if ok(x, y) then
          local tt = type(s.titles) == "table" and s.titles[k] or (type(s.titles) == "string" and s.titles or nil)
          g[#g + 1] = string.format('<circle cx="%s" cy="%s" r="%s" fill="currentColor"%s>%s</circle>', num(sx(x) + jit), num(sy(y)), r,
            s.opacity and string.format(' fill-opacity="%s"', s.opacity) or "", tt and ("<title>" .. esc(tt) .. "</title>") or "")
        end
      end
    end
    g[#g + 1] = "</g>"
    parts[#parts + 1] = table.concat(g)
  end
  if legend then
    local rows = math.max(1, math.floor((H - mt - mb) / 16))
    for j, s in ipairs(labels) do
      local y = mt + 16 * j
      if j == rows and #labels > rows then
        parts[#parts + 1] = string.format('<text x="%d" y="%d">+%d more</text>', W - mr + 12, y, #labels - rows + 1)
        break
      end
      local i = 0
      for k, t in ipairs(series) do if t == s then i = k end end
      parts[#parts + 1] = string.format('<g%s><rect x="%d" y="%d" width="10" height="10" fill="currentColor"/></g><text x="%d" y="%d">%s</text>',
        paint(s, i), W - mr + 12, y - 9, W - mr + 28, y, esc(clip(s.label, 24)))
    end
  end
  local text = finish(parts, o)
  if o.csv then
    local rows = { "series,x,y" }
    for i, s in ipairs(series) do
      for k = 1, #s.y do rows[#rows + 1] = string.format("%s,%.10g,%.10g", s.label or i, s.x[k], s.y[k]) end
    end
    util.write_file(o.csv, table.concat(rows, "\n") .. "\n")
  end
  return text
end

-- the heatmap, horizontal bars and parallel coordinates (visreg.plot_charts), built with the
-- helpers above
require("visreg.plot_charts").install(M, { finite = finite, fmt = fmt, esc = esc, num = num, text_width = text_width,
  clip = clip, svg_root = svg_root, finish = finish, no_data = no_data, as_list = as_list, range = range, COLORS = COLORS })

return M
