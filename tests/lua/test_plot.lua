-- visreg.plot's geometry: tick values, linear and log scales, decimation and smoothing, and the
-- SVG of each kind of plot: every coordinate a finite number inside the picture, never NaN, an
-- explicit "no data" where there is nothing to draw, ids and theme classes where the reports
-- need them.
local tap = require "tap"
local plot = require "visreg.plot"

local function join(t) return table.concat(t, ",") end

---------------------------------------------------------------- ticks and scales
tap.eq(join(plot.ticks(0, 1, 5)), "0,0.2,0.4,0.6,0.8,1", "ticks: steps of 1, 2 or 5 times a power of ten")
tap.eq(join(plot.ticks(-3.3, 17, 4)), "0,5,10,15", "ticks stay inside the range")
tap.eq(join(plot.ticks(0.1, 0.3, 4)), "0.1,0.15,0.2,0.25,0.3", "ticks of a small range are rounded (no 0.30000000000000004)")
tap.eq(join(plot.ticks(5, 5)), "5", "a range of one value has one tick")
tap.eq(#plot.ticks(0 / 0, 1), 0, "no ticks for a NaN bound")
tap.eq(join(plot.log_ticks(0.003, 20)), "0.01,0.1,1,10", "log ticks: the powers of ten inside")
tap.eq(join(plot.log_ticks(1e-4, 0.02)), "0.0001,0.001,0.01", "log ticks of a learning rate")
tap.eq(join(plot.log_ticks(0.15, 0.9)), "0.2,0.5", "log ticks within a decade: 2 and 5 times a power of ten")
tap.eq(join(plot.log_ticks(2e-5, 3e-3)), "2e-05,5e-05,0.0001,0.0002,0.0005,0.001,0.002", "two powers of ten inside: 1, 2 and 5 times them")
tap.eq(join(plot.log_ticks(1.5e-5, 9e-3)), "0.0001,0.001", "and the powers alone where 1, 2 and 5 make too many")
local many = plot.log_ticks(1e-12, 1e12)
tap.ok(#many >= 3 and #many <= 9, "24 decades are thinned to a few ticks", join(many))
tap.eq(#plot.log_ticks(-1, 10), 0, "no log ticks for a range that reaches 0 or below")
local lin = plot.scale(2, 6, 100, 300)
tap.ok(lin(2) == 100 and lin(6) == 300 and lin(4) == 200, "a linear scale maps the ends and the middle")
local rev = plot.scale(0, 1, 400, 40)
tap.ok(rev(0) == 400 and rev(1) == 40, "a scale may run downwards (y axes)")
local lg = plot.scale(1e-4, 1e-2, 0, 200, true)
tap.near(lg(1e-3), 100, 1e-9, "a log scale puts 1e-3 halfway between 1e-4 and 1e-2")
local flat = plot.scale(3, 3, 0, 10)
tap.ok(flat(3) == 0, "a scale over one value does not divide by zero")

---------------------------------------------------------------- decimation and smoothing
local xs, ys = {}, {}
for i = 1, 10000 do xs[i] = i; ys[i] = math.sin(i / 300) + (i == 5000 and 5 or 0) end
ys[7000] = 0 / 0
local dx, dy = plot.decimate(xs, ys, 400)
local top, gap = -math.huge, false
for i, y in ipairs(dy) do if y == y then top = math.max(top, y) else gap = true end; assert(dx[i]) end
tap.ok(#dy <= 400 + 4 and #dy >= 100, "10,000 points are decimated to a few hundred", #dy)
local want = -math.huge
for _, y in ipairs(ys) do if y == y then want = math.max(want, y) end end
tap.ok(top == want and gap, "decimation keeps a spike and a gap (a non-finite value)", string.format("max %s, gap %s", top, tostring(gap)))
tap.eq(#plot.decimate({ 1, 2, 3 }, { 1, 2, 3 }, 400), 3, "a short curve is left as it is")
local sm = plot.smooth({ 2, 2, 2, 2, 2, 0 / 0, 2, 2 }, 3)
local same = #sm == 8
for i, v in ipairs(sm) do if i ~= 6 and v ~= 2 then same = false end end
tap.ok(same and sm[6] ~= sm[6], "smoothing keeps a constant and leaves a gap where a value is missing")
local ramp = {}
for i = 1, 101 do ramp[i] = i end
local sr = plot.smooth(ramp, 11)
tap.ok(sr[51] == 51 and sr[1] == 1 and sr[101] == 101, "a centred average does not lag a straight line")

---------------------------------------------------------------- SVG geometry
-- every number of every coordinate attribute and path of an SVG, and whether all are finite and
-- inside the picture
local function coords(svg)
  local W, H = svg:match('viewBox="0 0 ([%d.]+) ([%d.]+)"')
  W, H = tonumber(W), tonumber(H)
  local n, bad = 0, nil
  local function check(v, what)
    n = n + 1
    local x = tonumber(v)
    if not x or x ~= x or x == math.huge or x == -math.huge then bad = bad or (what .. " " .. v) end
  end
  for d in svg:gmatch(' d="([^"]*)"') do
    if d:find("[nN]a[nN]") or d:find("[iI]nf") then bad = bad or ("path " .. d) end
    for v in d:gmatch("[-%d.e]+") do check(v, "path") end
  end
  for _, a in ipairs { "cx", "cy", "x", "y", "x1", "y1", "x2", "y2", "width", "height", "r" } do
    for v in svg:gmatch(" " .. a .. '="([^"]*)"') do if not v:find("%%") then check(v, a) end end
  end
  -- circles and path points inside the picture
  for cx, cy in svg:gmatch('<circle cx="([^"]*)" cy="([^"]*)"') do
    cx, cy = tonumber(cx), tonumber(cy)
    if not (cx and cy and cx >= 0 and cx <= W and cy >= 0 and cy <= H) then bad = bad or string.format("circle at %s,%s", cx, cy) end
  end
  return n, bad, W, H
end
local function marks(svg)
  local n = select(2, svg:gsub("<circle ", ""))
  for attrs in svg:gmatch("<path ([^>]*)>") do
    if not attrs:find('class="gr"', 1, true) and not attrs:find('class="fr"', 1, true) then n = n + 1 end
  end
  return n + select(2, svg:gsub('data%-v="', ""))
end

local svg = plot.svg({ { y = { 1, 0 / 0, 3, 4, math.huge, -1, 6 }, label = "a" }, { x = { 1, 2, 3 }, y = { 2, 2, 2 }, points = true, label = "b" } },
  { log_y = true, id = "plot-x", title = "t" })
local n, bad = coords(svg)
tap.ok(n > 20 and not bad, "a line and points: every coordinate is a finite number inside the picture", bad)
tap.ok(not svg:lower():find("nan", 1, true) and not svg:find("inf", 1, true), "no 'nan' or 'inf' anywhere in the SVG")
tap.ok(svg:find('<path d="M', 1, true) and select(2, svg:gsub(" M", "")) >= 1, "a left-out value lifts the pen (a gap, never a NaN)")
tap.ok(svg:find('id="plot-x"', 1, true) and svg:find('class="vp"', 1, true) and svg:find('class="k1" color="#1f77b4"', 1, true),
  "the SVG carries its id, the plot class and the series' theme class beside its own colour")
tap.ok(svg:find('xmlns="http://www.w3.org/2000/svg"', 1, true), "an SVG for a file names its namespace")
tap.ok(not plot.svg({ { y = { 1, 2 } } }, { inline = true }):find("xmlns", 1, true), "an SVG inside a page does not")
tap.eq(marks(svg), 4, "one path and three circles are drawn")

local empty = plot.svg({ { y = {} } }, { id = "plot-e", title = "nothing" })
tap.ok(empty:find("no data", 1, true) and empty:find('data-empty="true"', 1, true) and empty:find('id="plot-e"', 1, true) and marks(empty) == 0,
  "an empty series draws an explicit 'no data' (data-empty, no path)", empty)
tap.ok(plot.svg({}):find("no data", 1, true), "no series at all: 'no data'")
tap.ok(plot.svg({ { y = { 0 / 0, 0 / 0 } } }):find("no data", 1, true), "only NaN: 'no data'")
tap.ok(plot.svg({ { y = { -1, 0 } } }, { log_y = true }):find("no data", 1, true), "nothing positive on a log axis: 'no data'")

-- the scale of a plot: the lowest value at the bottom of the frame, the highest near the top
local one = plot.svg({ { x = { 0, 10 }, y = { 0, 100 } } }, { width = 400, height = 300, pad_y = 0 })
local x1, y1, x2, y2 = one:match('<path d="M([%d.]+),([%d.]+)L([%d.]+),([%d.]+)"')
local fx, fy, fw, fh = one:match('<rect class="fr" x="(%d+)" y="(%d+)" width="(%d+)" height="(%d+)"')
tap.ok(tonumber(x1) == tonumber(fx) and tonumber(y1) == tonumber(fy) + tonumber(fh) and tonumber(x2) == tonumber(fx) + tonumber(fw)
  and tonumber(y2) == tonumber(fy), "the data's corners land on the frame's corners", one:match('<path d="[^"]*"'))
local ticks = {}
for t in one:gmatch('text%-anchor="end">([^<]*)</text>') do ticks[#ticks + 1] = t end
tap.eq(join(ticks), "0,20,40,60,80,100", "the y axis is labelled with nice ticks")

local eb = plot.svg({ { x = { 1, 2 }, y = { 1, 2 }, err = { 0.5, 0 / 0 }, points = true } }, {})
tap.ok(eb:find("V", 1, true) and select(2, eb:gsub("h8", "")) == 2 and not select(2, coords(eb)), "an error bar: a vertical line and two caps (a NaN half-width: none)")
local cat = plot.svg({ { x = { 1, 2, 3 }, y = { 1, 3, 2 }, points = true } }, { x_categories = { "a", "{512,128}", "c" } })
tap.ok(cat:find(">{512,128}<", 1, true) and cat:find(">a<", 1, true), "categories label the x axis")
local ep = plot.svg({ { x = { 1, 2 }, y = { 10, 20 } } }, { x_integer = true })
tap.ok(not ep:find(">1.2<", 1, true) and ep:find(">2<", 1, true), "whole ticks only for a count axis")
local long = {}
for i = 1, 5000 do long[i] = i % 7 end
local lsvg = plot.svg({ { y = long } }, {})
local pts = select(2, lsvg:match('<path d="([^"]*)" fill="none" stroke="currentColor"'):gsub("[ML]", ""))
tap.ok(pts <= 404, "a 5000-point line is drawn with a few hundred points", pts)

---------------------------------------------------------------- heatmap, bars, parallel coordinates
local hm = plot.heatmap({ { 5, 1 }, { 0, 4 } }, { id = "plot-h", row_labels = { "a", "b" }, col_labels = { "a", "b" }, text = true })
local hn, hbad = coords(hm)
tap.ok(select(2, hm:gsub('data%-v="', "")) == 4 and hn > 0 and not hbad and hm:find('id="plot-h"', 1, true), "a 2 x 2 heatmap: 4 cells with their values", hbad)
tap.ok(hm:find('fill="' .. plot.colormap(1, true) .. '" data%-i="0" data%-j="0" data%-v="5"'), "the largest value takes the top of the colour scale")
tap.ok(plot.heatmap({}):find("no data", 1, true), "an empty matrix: 'no data'")
local hb = plot.hbars({ "x", "y" }, { 0.5, 1 }, { max = 1 })
local w1, w2 = hb:match('width="([%d.]+)"[^>]*data%-label="x"'), hb:match('width="([%d.]+)"[^>]*data%-label="y"')
tap.near(tonumber(w1) * 2, tonumber(w2), 0.02, "bars: a value of 0.5 is half as long as 1")
tap.ok(plot.hbars({ "x" }, { 0 / 0 }):find("no data", 1, true), "bars without a finite value: 'no data'")
local pc = plot.parallel({ { label = "lr", values = { 1e-4, 1e-3, 1e-2 }, log = true }, { label = "width", values = { 8, 16, nil }, categories = { 8, 16 } },
  { label = "acc", values = { 0.5, 0 / 0, 0.7 } } }, { color = { 0.5, nil, 0.7 }, id = "plot-p", attrs = { ' data-trial="0"', ' data-trial="1"', ' data-trial="2"' } })
local pn, pbad = coords(pc)
tap.ok(select(2, pc:gsub("data%-trial=", "")) == 3 and pn > 0 and not pbad, "parallel coordinates: a line per row, finite coordinates", pbad)
tap.ok(pc:find('class="dim"', 1, true) and pc:find(plot.colormap(1), 1, true), "a row without a colour value is dimmed; the best takes the top colour")
tap.ok(plot.parallel({}):find("no data", 1, true) and plot.parallel({ { label = "a", values = {} } }):find("no data", 1, true), "no rows: 'no data'")
local css = plot.css()
tap.ok(css:find("prefers-color-scheme:dark", 1, true) and css:find("@media print", 1, true) and css:find(".k10{color:var(--k10)}", 1, true),
  "the stylesheet themes plots for dark screens and paper")

os.exit(tap.done(), true)
