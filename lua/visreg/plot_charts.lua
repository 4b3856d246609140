-- visreg.plot_charts: three of visreg.plot's SVG charts, plot.heatmap, plot.hbars and
-- plot.parallel, made with plot's SVG helpers (plot.lua installs them; use them as plot.*).
local util = require "visreg.util"

local C = {}
local M, finite, fmt, esc, num, text_width, clip, svg_root, finish, no_data, as_list, range, COLORS

-- plot.heatmap(rows, o): a matrix as coloured cells (rows[i][j]). o: row_labels, col_labels,
-- title, xlabel, ylabel, text (a function(i, j, v) giving a cell's text, or true for the value),
-- color (a matrix of the values that set the colour, default rows; lo..hi by default their
-- range), lo, hi, cell (pixels), id, class, data, inline, path. Cells carry data-i, data-j and
-- data-v (the value) and a hover title.
function C.heatmap(rows, o)
  o = o or {}
  local n = #rows
  local m = n > 0 and #rows[1] or 0
  local color = o.color or rows
  local lo, hi = math.huge, -math.huge
  for i = 1, n do for j = 1, m do
    local v = color[i] and color[i][j]
    if finite(v) then lo, hi = math.min(lo, v), math.max(hi, v) end
  end end
  if n == 0 or m == 0 or lo > hi then return no_data(o.width or 480, o.height or 320, o, "heatmap") end
  lo, hi = o.lo or lo, o.hi or hi
  if hi <= lo then hi = lo + 1 end
  local rl, cl = o.row_labels or {}, o.col_labels or {}
  local rw, cw = 0, 0
  for i = 1, n do rw = math.max(rw, text_width(clip(rl[i] or i, 16))) end
  for j = 1, m do cw = math.max(cw, text_width(clip(cl[j] or j, 16))) end
  local cell = o.cell or math.max(18, math.min(44, math.floor(440 / math.max(n, m))))
  local ml = rw + 12 + (o.ylabel and 20 or 0)
  local mt = o.title and 32 or 10
  local mb = cw * 0.72 + 18 + (o.xlabel and 20 or 0) -- column labels at 45 degrees
  local W = math.ceil(ml + m * cell + 40 + math.max(50, o.scale_label and text_width(o.scale_label) or 0))
  local H = math.ceil(mt + n * cell + mb)
  local parts = { svg_root(W, H, o, "heatmap"), '<rect class="bg" width="100%" height="100%" fill="white"/>' }
  if o.title then parts[#parts + 1] = string.format('<text x="%s" y="20" text-anchor="middle" font-size="14">%s</text>', num(ml + m * cell / 2), esc(o.title)) end
  local cells = {}
  for i = 1, n do
    for j = 1, m do
      local v = rows[i][j]
      local c = color[i] and color[i][j]
      local t = finite(c) and (c - lo) / (hi - lo) or nil
      local fill = t and M.colormap(t, true) or "none"
      local x, y = ml + (j - 1) * cell, mt + (i - 1) * cell
      local txt = ""
      if o.text and finite(v) then
        local s = type(o.text) == "function" and o.text(i, j, v) or fmt(v)
        if s and s ~= "" then
          txt = string.format('<text x="%s" y="%s" text-anchor="middle" font-size="%d" fill="%s">%s</text>', num(x + cell / 2),
            num(y + cell / 2 + 4), cell < 26 and 9 or 11, t and t > 0.55 and "#000" or "#fff", esc(s))
        end
      end
      cells[#cells + 1] = string.format('<g><rect x="%s" y="%s" width="%d" height="%d" fill="%s" data-i="%d" data-j="%d" data-v="%s"><title>%s</title></rect>%s</g>',
        num(x), num(y), cell, cell, fill, i - 1, j - 1, finite(v) and util.json_encode(v) or "", esc(string.format("%s -> %s: %s",
          rl[i] or i, cl[j] or j, finite(v) and fmt(v) or "-")), txt)
    end
  end
  parts[#parts + 1] = table.concat(cells)
  local lab = {}
  for i = 1, n do
    lab[#lab + 1] = string.format('<text x="%d" y="%s" text-anchor="end">%s</text>', ml - 6, num(mt + (i - 0.5) * cell + 4), esc(clip(rl[i] or i, 16)))
  end
  for j = 1, m do
    local x, y = ml + (j - 0.5) * cell, mt + n * cell + 8
    lab[#lab + 1] = string.format('<text transform="translate(%s,%s) rotate(-45)" text-anchor="end">%s</text>', num(x + 4), num(y + 4), esc(clip(cl[j] or j, 16)))
  end
  parts[#parts + 1] = "<g>" .. table.concat(lab) .. "</g>"
  if o.xlabel then parts[#parts + 1] = string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', num(ml + m * cell / 2), H - 8, esc(o.xlabel)) end
  if o.ylabel then parts[#parts + 1] = string.format('<text transform="translate(14,%s) rotate(-90)" text-anchor="middle">%s</text>', num(mt + n * cell / 2), esc(o.ylabel)) end
  -- the colour scale
  local bx, bh = ml + m * cell + 20, math.min(n * cell, 200)
  local bar = {}
  for k = 0, 19 do
    bar[#bar + 1] = string.format('<rect x="%d" y="%s" width="14" height="%s" fill="%s"/>', bx, num(mt + bh - (k + 1) * bh / 20), num(bh / 20 + 0.5), M.colormap((k + 0.5) / 20, true))
  end
  parts[#parts + 1] = "<g>" .. table.concat(bar) .. string.format('<text x="%d" y="%d">%s</text><text x="%d" y="%s">%s</text>', bx + 18, mt + 10,
    esc(fmt(hi)), bx + 18, num(mt + bh), esc(fmt(lo))) .. (o.scale_label and string.format('<text x="%d" y="%s">%s</text>', bx, num(mt + bh + 16), esc(o.scale_label)) or "") .. "</g>"
  return finish(parts, o)
end

-- plot.hbars(labels, values, o): horizontal bars, one row a label. o: max (the full length, default
-- the largest value), title, fmt (a function giving each value's text), err ({half widths}),
-- note (text under the bars), id, class, data, inline, path, width. Bars carry data-label and
-- data-v (the value).
function C.hbars(labels, values, o)
  o = o or {}
  values = as_list(values)
  local W = o.width or 560
  local maxv = o.max or 0
  local any = false
  for _, v in ipairs(values) do if finite(v) then any = true; if not o.max then maxv = math.max(maxv, v) end end end
  if #values == 0 or not any then return no_data(W, o.height or 200, o, "bars") end
  if maxv <= 0 then maxv = 1 end
  local lw = 0
  for i = 1, #values do lw = math.max(lw, text_width(clip(labels[i] or i, 28))) end
  local ml, mr, mt, row = lw + 14, 70, o.title and 32 or 10, o.row or 20
  local H = mt + #values * row + (o.note and 26 or 10)
  local parts = { svg_root(W, H, o, "bars"), '<rect class="bg" width="100%" height="100%" fill="white"/>' }
  if o.title then parts[#parts + 1] = string.format('<text x="%s" y="20" text-anchor="middle" font-size="14">%s</text>', num(W / 2), esc(o.title)) end
  local sx = M.scale(0, maxv, ml, W - mr)
  local bars = {}
  for i, v in ipairs(values) do
    local y = mt + (i - 1) * row
    local label = labels[i] or tostring(i)
    bars[#bars + 1] = string.format('<text x="%d" y="%s" text-anchor="end">%s</text>', ml - 6, num(y + row / 2 + 4), esc(clip(label, 28)))
    if finite(v) then
      local x1 = sx(math.max(0, math.min(v, maxv)))
      local e = o.err and o.err[i]
      bars[#bars + 1] = string.format('<g class="k%d" color="%s"><rect x="%d" y="%s" width="%s" height="%s" fill="currentColor" data-label="%s" data-v="%s"><title>%s</title></rect>%s</g>',
        o.color_index or 1, COLORS[o.color_index or 1], ml, num(y + 3), num(math.max(0.5, x1 - ml)), num(row - 6), esc(label), util.json_encode(v),
        esc(label .. ": " .. (o.fmt and o.fmt(v) or fmt(v))),
        finite(e) and string.format('<path class="fg" d="M%s,%sH%s" stroke="currentColor" color="#222"/>', num(sx(math.max(0, v - e))), num(y + row / 2), num(sx(math.min(maxv, v + e)))) or "")
      bars[#bars + 1] = string.format('<text x="%s" y="%s">%s</text>', num(x1 + 4), num(y + row / 2 + 4), esc(o.fmt and o.fmt(v) or fmt(v)))
    else
      bars[#bars + 1] = string.format('<text class="nodata" x="%d" y="%s" fill="#666">-</text>', ml + 4, num(y + row / 2 + 4))
    end
  end
  parts[#parts + 1] = string.format('<path class="fr" d="M%d,%dV%d" stroke="#888"/>', ml, mt, mt + #values * row)
  parts[#parts + 1] = table.concat(bars)
  if o.note then parts[#parts + 1] = string.format('<text x="%d" y="%d" font-size="11">%s</text>', ml, H - 8, esc(o.note)) end
  return finish(parts, o)
end

-- plot.parallel(axes, o): parallel coordinates, one polyline a row. axes: {{label =, values =
-- {one per row}, log = true, categories = {the values in axis order} (values matched to them)}};
-- o.color: {one number per row} sets each line's colour (viridis, with a colour bar labelled
-- o.color_label; a row without one is grey and dashed); o.titles: hover text per row; o.attrs:
-- attributes per row (' data-trial="3"'); o.order: the drawing order (later on top); width,
-- height, title, id, class, data, inline, path. An axis without a finite value is flat.
function C.parallel(axes, o)
  o = o or {}
  local W, H = o.width or 900, o.height or 380
  local n = 0
  for _, a in ipairs(axes) do n = math.max(n, #(a.values or {})) end
  if #axes == 0 or n == 0 then return no_data(W, H, o, "parallel") end
  local has_color = false
  local clo, chi = math.huge, -math.huge
  for r = 1, n do
    local c = o.color and o.color[r]
    if finite(c) then has_color = true; clo, chi = math.min(clo, c), math.max(chi, c) end
  end
  local ml, mr, mt, mb = 40, has_color and 110 or 40, (o.title and 30 or 8) + 22, 30
  local step = #axes > 1 and (W - ml - mr) / (#axes - 1) or 0
  local ax = {}
  for j, a in ipairs(axes) do
    local x = #axes > 1 and ml + (j - 1) * step or (ml + W - mr) / 2
    local e = { x = x, label = a.label }
    if a.categories then
      local idx = {}
      for k, c in ipairs(a.categories) do idx[util.json_encode(c)] = k end
      local m = #a.categories
      e.map = function(v)
        local k = v ~= nil and idx[util.json_encode(v)]
        if not k then return nil end
        return m == 1 and (mt + H - mb) / 2 or (H - mb) - (k - 1) / (m - 1) * (H - mb - mt)
      end
      e.ticks = {}
      for k, c in ipairs(a.categories) do e.ticks[k] = { e.map(c), type(c) == "number" and fmt(c) or (type(c) == "table" and util.json_encode(c) or tostring(c)) } end
    else
      local lo, hi = math.huge, -math.huge
      for r = 1, n do
        local v = a.values[r]
        if finite(v) and (not a.log or v > 0) then lo, hi = math.min(lo, v), math.max(hi, v) end
      end
      if lo <= hi then
        if lo == hi then if a.log then lo, hi = lo / 2, hi * 2 else lo, hi = lo - 0.5, hi + 0.5 end end
        local sc = M.scale(lo, hi, H - mb, mt, a.log)
        e.map = function(v) if finite(v) and (not a.log or v > 0) then return sc(v) end end
        e.ticks = {}
        for _, t in ipairs(a.log and M.log_ticks(lo, hi) or M.ticks(lo, hi, 4)) do
          local y = sc(t)
          if y >= mt - 0.5 and y <= H - mb + 0.5 then e.ticks[#e.ticks + 1] = { y, fmt(t) } end
        end
      else
        e.map = function() return nil end
        e.ticks = {}
      end
    end
    ax[j] = e
  end
  local lines, drawn = {}, 0
  local order = o.order
  if not order then order = {} for r = 1, n do order[r] = r end end
  for _, r in ipairs(order) do
    local d, pen, pts = {}, "M", 0
    for j, a in ipairs(axes) do
      local y = ax[j].map(a.values[r])
      if y and finite(y) then
        d[#d + 1] = (pen == "M" and (#d > 0 and " M" or "M") or "L") .. num(ax[j].x) .. "," .. num(y)
        pen, pts = "L", pts + 1
      else
        pen = "M"
      end
    end
    if pts > 0 then
      drawn = drawn + 1
      local c = o.color and o.color[r]
      local t = finite(c) and (chi > clo and (c - clo) / (chi - clo) or 0.5) or nil
      local tt = o.titles and o.titles[r]
      lines[#lines + 1] = string.format('<path d="%s"%s%s>%s</path>', table.concat(d),
        t and string.format(' stroke="%s"', M.colormap(t)) or ' class="dim" stroke="#999" stroke-dasharray="4 3"',
        o.attrs and o.attrs[r] or "", tt and ("<title>" .. esc(tt) .. "</title>") or "")
    end
  end
  if drawn == 0 then return no_data(W, H, o, "parallel") end
  local parts = { svg_root(W, H, o, "parallel"), '<rect class="bg" width="100%" height="100%" fill="white"/>' }
  if o.title then parts[#parts + 1] = string.format('<text x="%s" y="20" text-anchor="middle" font-size="14">%s</text>', num(W / 2), esc(o.title)) end
  parts[#parts + 1] = '<g class="lines" fill="none" stroke-width="1.4" stroke-opacity="0.75">' .. table.concat(lines) .. "</g>"
  local ag = {}
  for j, e in ipairs(ax) do
    ag[#ag + 1] = string.format('<path class="fr" d="M%s,%dV%d" stroke="#888" stroke-width="1.5"/>', num(e.x), mt, H - mb)
    local anchor = j == 1 and #ax > 1 and "start" or (j == #ax and #ax > 1 and "end" or "middle")
    ag[#ag + 1] = string.format('<text x="%s" y="%d" text-anchor="%s" font-weight="bold">%s</text>', num(e.x), mt - 12, anchor, esc(clip(e.label, 28)))
    for _, t in ipairs(e.ticks) do
      ag[#ag + 1] = string.format('<path class="fr" d="M%s,%sh5" stroke="#888"/><text x="%s" y="%s" font-size="11" paint-order="stroke" stroke="white" stroke-width="3" class="halo">%s</text>',
        num(e.x - 2), num(t[1]), num(e.x + 5), num(t[1] + 4), esc(clip(t[2], 14)))
    end
  end
  parts[#parts + 1] = "<g>" .. table.concat(ag) .. "</g>"
  if has_color then
    local bx, bh = W - mr + 40, H - mt - mb
    local bar = {}
    for k = 0, 19 do
      bar[#bar + 1] = string.format('<rect x="%d" y="%s" width="14" height="%s" fill="%s"/>', bx, num(mt + bh - (k + 1) * bh / 20), num(bh / 20 + 0.5), M.colormap((k + 0.5) / 20))
    end
    parts[#parts + 1] = "<g>" .. table.concat(bar) .. string.format('<text x="%d" y="%d">%s</text><text x="%d" y="%d">%s</text><text x="%d" y="%d" text-anchor="middle">%s</text>',
      bx + 18, mt + 10, esc(fmt(chi)), bx + 18, H - mb, esc(fmt(clo)), bx + 7, mt - 12, esc(clip(o.color_label or "", 18))) .. "</g>"
  end
  return finish(parts, o)
end

-- M: the visreg.plot module; h: its SVG helpers
function C.install(plot, h)
  M = plot
  finite, fmt, esc, num, text_width, clip = h.finite, h.fmt, h.esc, h.num, h.text_width, h.clip
  svg_root, finish, no_data, as_list, range, COLORS = h.svg_root, h.finish, h.no_data, h.as_list, h.range, h.COLORS
  plot.heatmap, plot.hbars, plot.parallel = C.heatmap, C.hbars, C.parallel
end

return C
