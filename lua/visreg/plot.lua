-- visreg.plot: pictures of numbers without a dependency, in the terminal (Unicode braille and
-- block characters) and as SVG files for a paper.
--
--   plot.ticks(lo, hi, n)             "nice" tick values (1, 2, 5 x 10^k) covering [lo, hi]
--   plot.scale(lo, hi, a, b, log)     a function mapping [lo, hi] to [a, b], linear or log10
--   plot.line(ys, o)                  a curve as text: o.xs, o.log_y, o.width, o.height, o.title
--   plot.hist(values, o)              a histogram as text: o.bins, o.width, o.height, o.title
--   plot.bars(labels, values, o)      horizontal bars as text
--   plot.svg(series, o)               an SVG of lines or points: series = {{x =, y =, label =,
--                                     points = true}, ...}; o.path writes it (and o.csv the data),
--                                     o.title, o.xlabel, o.ylabel, o.log_x, o.log_y, o.colors
-- Values may be Lua lists or 1-D tensors; non-finite values are left out of every path.
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

-- powers of ten covering [lo, hi] (both > 0)
function M.log_ticks(lo, hi)
  local out = {}
  for e = math.floor(math.log10(lo)), math.ceil(math.log10(hi)) do
    local v = 10 ^ e
    if v >= lo * (1 - 1e-9) and v <= hi * (1 + 1e-9) then out[#out + 1] = v end
  end
  if #out == 0 then out = { lo, hi } end
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
local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" }
M.COLORS = COLORS

local function esc(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;")) end

-- the SVG text of series on one pair of axes
function M.svg(series, o)
  o = o or {}
  local W, H = o.width or 640, o.height or 400
  local labelled = false
  for _, s in ipairs(series) do labelled = labelled or s.label ~= nil end
  -- the legend stands right of the axes, never over the data
  local ml, mr, mt, mb = 64, labelled and 140 or 16, o.title and 32 or 12, 48
  local xs_all, ys_all = {}, {}
  for i, s in ipairs(series) do
    s.y = as_list(s.y)
    s.x = as_list(s.x)
    if not s.x then s.x = {} for k = 1, #s.y do s.x[k] = k end end
    xs_all[i], ys_all[i] = s.x, s.y
  end
  local xlo, xhi = range(xs_all, o.log_x)
  local ylo, yhi = range(ys_all, o.log_y)
  local parts = { string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" ' ..
    'font-family="sans-serif" font-size="12">', W, H, W, H), '<rect width="100%" height="100%" fill="white"/>' }
  if o.title then parts[#parts + 1] = string.format('<text x="%d" y="20" text-anchor="middle" font-size="14">%s</text>', W / 2, esc(o.title)) end
  if not xlo or not ylo then
    parts[#parts + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">no finite values</text></svg>', W / 2, H / 2)
    return table.concat(parts, "\n")
  end
  local sx, sy = M.scale(xlo, xhi, ml, W - mr, o.log_x), M.scale(ylo, yhi, H - mb, mt, o.log_y)
  parts[#parts + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>', ml, mt, W - ml - mr, H - mt - mb)
  for _, t in ipairs(o.log_x and M.log_ticks(xlo, xhi) or M.ticks(xlo, xhi, 6)) do
    local x = sx(t)
    parts[#parts + 1] = string.format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>',
      x, mt, x, H - mb, x, H - mb + 16, esc(fmt(t)))
  end
  for _, t in ipairs(o.log_y and M.log_ticks(ylo, yhi) or M.ticks(ylo, yhi, 5)) do
    local y = sy(t)
    parts[#parts + 1] = string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>',
      ml, y, W - mr, y, ml - 6, y + 4, esc(fmt(t)))
  end
  if o.xlabel then parts[#parts + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">%s</text>', (ml + W - mr) / 2, H - 10, esc(o.xlabel)) end
  if o.ylabel then
    parts[#parts + 1] = string.format('<text transform="translate(16,%d) rotate(-90)" text-anchor="middle">%s</text>', (mt + H - mb) / 2, esc(o.ylabel))
  end
  local colors = o.colors or COLORS
  for i, s in ipairs(series) do
    local color = s.color or colors[(i - 1) % #colors + 1]
    local pts, path = {}, {}
    local pen = "M" -- a value left out (not finite, or <= 0 on a log axis) lifts the pen
    for k = 1, #s.y do
      local x, y = s.x[k], s.y[k]
      if finite(x) and finite(y) and (not o.log_x or x > 0) and (not o.log_y or y > 0) then
        local px, py = sx(x), sy(y)
        if s.points then
          pts[#pts + 1] = string.format('<circle cx="%.1f" cy="%.1f" r="%s" fill="%s"/>', px, py, s.radius or 2, color)
        else
          path[#path + 1] = string.format("%s%.1f %.1f", pen, px, py)
          pen = "L"
        end
      else
        pen = "M"
      end
    end
    if #path > 0 then
      parts[#parts + 1] = string.format('<path d="%s" fill="none" stroke="%s" stroke-width="1.5"/>', table.concat(path, " "), color)
    end
    for _, p in ipairs(pts) do parts[#parts + 1] = p end
    if s.label then
      local y = mt + 16 * i
      parts[#parts + 1] = string.format('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>',
        W - mr + 12, y - 9, color, W - mr + 28, y, esc(s.label))
    end
  end
  parts[#parts + 1] = "</svg>"
  local text = table.concat(parts, "\n")
  if o.path then util.write_file(o.path, text .. "\n") end
  if o.csv then
    local rows = { "series,x,y" }
    for i, s in ipairs(series) do
      for k = 1, #s.y do rows[#rows + 1] = string.format("%s,%.10g,%.10g", s.label or i, s.x[k], s.y[k]) end
    end
    util.write_file(o.csv, table.concat(rows, "\n") .. "\n")
  end
  return text
end

return M
