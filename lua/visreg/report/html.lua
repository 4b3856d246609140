-- visreg.report.html: the parts of a self-contained report page. One file: the stylesheet (the
-- plots' theme from visreg.plot: light, dark through prefers-color-scheme, light on paper), inline
-- SVG and one small script (sortable tables, the grouping select, hover highlights, the age of a
-- page written during a run). A Content-Security-Policy forbids every request, so the page opens
-- from disk and never reaches the network.
local util = require "visreg.util"
local plot = require "visreg.plot"

local M = {}

local function esc(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;")) end
M.esc = esc

local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end
M.finite = finite

-- an id from a name: lowercase letters, digits and dashes
function M.slug(s)
  local t = tostring(s):lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  return t ~= "" and t or "x"
end

-- a number for reading: 4 decimals between 1e-3 and 1e4, else 4 significant digits; integers whole
function M.fmt(x)
  if type(x) ~= "number" then return x == nil and "" or tostring(x) end
  if x ~= x then return "NaN" end
  if x == math.huge then return "inf" end
  if x == -math.huge then return "-inf" end
  if x % 1 == 0 and math.abs(x) < 1e9 then return string.format("%d", x) end
  local a = math.abs(x)
  if a >= 1e4 or a < 1e-3 then return string.format("%.4g", x) end
  return string.format("%.4f", x)
end

-- the text of any value as a table shows it (lists as {a,b}, strings as they are)
function M.value_text(v)
  if type(v) == "number" then
    if v % 1 == 0 and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.6g", v)
  end
  if type(v) == "table" then
    if util.is_array(v) then
      local t = {}
      for i, x in ipairs(v) do t[i] = M.value_text(x) end
      return "{" .. table.concat(t, ",") .. "}"
    end
    return util.json_encode(v)
  end
  if v == nil then return "" end
  return tostring(v)
end

-- a table cell: numbers right-aligned with data-value (the JSON text of the number, as the
-- run's files hold it) and data-sort; o.text overrides the shown text, o.class adds classes,
-- o.plain shows a number as it is (left-aligned, all its digits: a setting, not a result)
function M.cell(v, o)
  o = o or {}
  local attrs = {}
  local text
  if type(v) == "number" then
    local j = util.json_encode(v)
    attrs[#attrs + 1] = string.format(' class="%s" data-value="%s" data-sort="%s"', (o.plain and "val" or "num") .. (o.class and (" " .. o.class) or ""), j,
      finite(v) and j or "")
    text = o.text or (o.plain and M.value_text(v) or M.fmt(v))
  else
    local t = o.text or M.value_text(v)
    if o.class then attrs[#attrs + 1] = string.format(' class="%s"', o.class) end
    attrs[#attrs + 1] = string.format(' data-sort="%s"', esc(o.sort or (v == nil and "" or M.value_text(v))))
    text = t
  end
  for k, x in pairs(o.data or {}) do attrs[#attrs + 1] = string.format(' data-%s="%s"', k, esc(x)) end
  return "<td" .. table.concat(attrs) .. ">" .. (o.raw and text or esc(text)) .. "</td>"
end

-- a table: o.id, o.columns = {{label =, title =}}, o.rows = {{cells = {"<td>...", ...}, attrs = ' data-..'}},
-- o.sortable, o.caption, o.class, o.tall (scrolls on a screen past about 20 rows; printed whole)
function M.table(o)
  local out = { string.format('<div class="wide%s"><table id="%s" class="%s%s">', o.tall and " tall" or "", esc(o.id), o.sortable and "sortable" or "",
    o.class and (" " .. o.class) or "") }
  if o.caption then out[#out + 1] = "<caption>" .. esc(o.caption) .. "</caption>" end
  local th = {}
  for _, c in ipairs(o.columns) do
    th[#th + 1] = string.format("<th%s%s>%s</th>", c.title and (' title="' .. esc(c.title) .. '"') or "",
      c.key and (' data-key="' .. esc(c.key) .. '"') or "", esc(c.label))
  end
  out[#out + 1] = "<thead><tr>" .. table.concat(th) .. "</tr></thead><tbody>"
  for _, r in ipairs(o.rows) do out[#out + 1] = "<tr" .. (r.attrs or "") .. ">" .. table.concat(r.cells) .. "</tr>" end
  out[#out + 1] = "</tbody></table></div>"
  return table.concat(out, "\n")
end

-- a plot with its caption
function M.figure(svg, caption, o)
  o = o or {}
  return string.format('<figure%s>%s%s</figure>', o.class and (' class="' .. o.class .. '"') or "", svg,
    caption and ("<figcaption>" .. caption .. "</figcaption>") or "")
end

local CSS = [[
*{box-sizing:border-box}
body{margin:0;padding:16px 24px 40px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:1320px;margin:0 auto}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:17px;margin:28px 0 8px;padding-bottom:3px;border-bottom:1px solid var(--grid)}
h3{font-size:14px;margin:14px 0 6px}
a{color:var(--k1)}
.meta{color:var(--muted);font-size:13px}
.status{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:600;border:1px solid currentColor}
.st-done{color:var(--k3)}.st-running,.st-paused{color:var(--k1)}.st-failed,.st-diverged{color:var(--k2)}
.st-stopped,.st-interrupted,.st-pending,.st-unknown{color:var(--k4)}
.notice{padding:8px 12px;border-left:4px solid var(--k4);background:rgba(255,160,40,.12);margin:10px 0}
.notice.bad{border-color:var(--k2);background:rgba(220,40,40,.12)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:14px 18px;align-items:start}
figure{margin:0;break-inside:avoid;page-break-inside:avoid}
figcaption{font-size:12px;color:var(--muted);margin-top:2px}
.wide{overflow-x:auto;max-width:100%}.wide.tall{max-height:560px;overflow-y:auto;border-bottom:1px solid var(--grid)}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
th,td{padding:3px 9px;border-bottom:1px solid var(--grid);text-align:left;vertical-align:top;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.wrap{white-space:normal;min-width:260px}
table.sortable th{cursor:pointer;user-select:none}
th{background:var(--bg);position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \25B2"}th[aria-sort=descending]::after{content:" \25BC"}
tr.override td{background:rgba(255,190,0,.20)}
tr.same td{background:rgba(128,128,128,.10)}
tr.hi td{background:rgba(90,150,230,.18)}
tr.best td{font-weight:600}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
pre{white-space:pre-wrap;background:var(--plot-bg);border:1px solid var(--grid);padding:6px 8px;max-height:420px;overflow:auto}
details{margin:6px 0}summary{cursor:pointer}
.legend{font-size:12px;margin:2px 0 0 4px}.legend span.item{margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle;background:currentColor}
.k1{color:var(--k1)}.k2{color:var(--k2)}.k3{color:var(--k3)}.k4{color:var(--k4)}.k5{color:var(--k5)}
.k6{color:var(--k6)}.k7{color:var(--k7)}.k8{color:var(--k8)}.k9{color:var(--k9)}.k10{color:var(--k10)}
.legend .lbl{color:var(--fg)}
.controls{margin:6px 0}select{font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--frame);padding:1px 4px}
svg.vp .lines path:hover,svg.vp path.hi{stroke-width:4;stroke-opacity:1}
svg.vp g.trial:hover path{stroke-width:3.5;stroke-opacity:1}
.method{font-size:13px;max-width:900px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:1px 14px;font-size:13px}
.kv dt{color:var(--muted)}.kv dd{margin:0}
@page{margin:12mm}
@media print{
body{padding:0;font-size:11px}main{max-width:none}
.noprint,select{display:none!important}
th{position:static}a{color:inherit;text-decoration:none}
.grid{grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:8px 14px}
pre,.wide,.wide.tall{max-height:none;overflow:visible}
th,td{padding:2px 5px;white-space:normal}
svg.vp{font-size:14px}
h2{break-after:avoid;page-break-after:avoid}
tr{break-inside:avoid}
}
]]

-- the page's script: sorting, the grouping select, hovering rows, a running page's age, load time
local SCRIPT = [[
(function(){
var d=document,A=Array.prototype;
function each(s,f,r){A.forEach.call((r||d).querySelectorAll(s),f)}
function sv(c){return c?c.getAttribute('data-sort'):null}
each('table.sortable',function(t){
 var hs=t.tHead.rows[0].cells;
 A.forEach.call(hs,function(th,i){
  th.tabIndex=0;
  function go(){
   var asc=th.getAttribute('aria-sort')!=='ascending';
   A.forEach.call(hs,function(h){h.removeAttribute('aria-sort')});
   th.setAttribute('aria-sort',asc?'ascending':'descending');
   var b=t.tBodies[0],rs=A.slice.call(b.rows);
   rs.sort(function(x,y){
    var p=sv(x.cells[i]),q=sv(y.cells[i]);
    if(p===null||p==='')return(q===null||q==='')?0:1;
    if(q===null||q==='')return -1;
    var u=Number(p),w=Number(q),r=(!isNaN(u)&&!isNaN(w))?u-w:(p<q?-1:p>q?1:0);
    return asc?r:-r});
   rs.forEach(function(r){b.appendChild(r)});
  }
  th.addEventListener('click',go);
  th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();go()}});
 });
});
each('select[data-grouping]',function(s){
 var root=d.getElementById(s.getAttribute('data-grouping'));
 function apply(){
  var k=+s.value;
  each('[data-groups]',function(g){g.setAttribute('class','trial '+g.getAttribute('data-groups').split(' ')[k])},root);
  each('[data-option]',function(e){var on=e.getAttribute('data-option')===String(k);
   if(e instanceof SVGElement)e.setAttribute('display',on?'inline':'none');else e.hidden=!on},root);
 }
 s.addEventListener('change',apply);apply();
});
each('tr[data-trial]',function(r){
 var t=r.getAttribute('data-trial');
 r.addEventListener('mouseenter',function(){each('svg [data-trial="'+t+'"]',function(p){p.classList.add('hi')})});
 r.addEventListener('mouseleave',function(){each('svg .hi',function(p){p.classList.remove('hi')})});
});
each('[data-written]',function(e){
 var age=Date.now()/1000-(+e.getAttribute('data-written'));
 if(age>(+e.getAttribute('data-stale-after'))){e.hidden=false;
  var m=Math.round(age/60);e.querySelector('.age').textContent=m<120?m+' min':Math.round(m/60)+' h'}
});
window.addEventListener('load',function(){d.body.setAttribute('data-load-ms',String(Math.round(performance.now())))});
})();
]]

-- the whole page: o.title, o.body (HTML), o.kind ("run" or "sweep": data-report on <body>)
function M.page(o)
  return table.concat({
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    -- no request of any kind: the page is one file
    [[<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">]],
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    '<link rel="icon" href="data:,">',
    "<title>" .. esc(o.title) .. "</title>",
    "<style>\n" .. plot.css() .. "\n" .. CSS .. "</style></head>",
    string.format('<body data-report="%s"><main>', o.kind or ""),
    o.body,
    string.format('<p class="meta">written by visreg %s at %s; <code>visreg report %s</code> writes it again.</p>',
      esc(o.version or ""), os.date("!%Y-%m-%d %H:%M:%S UTC"), esc(o.dir or "DIR")),
    "</main><script>" .. SCRIPT .. "</script></body></html>",
    "",
  }, "\n")
end

-- a page through a temporary file of this process's own and a rename: a reader, or another
-- process writing the same page, never sees half a file
M.write = util.write_shared

-- JSON files of a folder, nil when missing or unreadable
M.read_json = util.read_json

-- seconds since a file was last written (nil when it does not exist)
function M.age(path)
  if not util.file_exists(path) then return nil end
  local p = io.popen("stat -c %Y " .. util.shell_quote(path) .. " 2>/dev/null")
  local s = p and p:read("*l")
  if p then p:close() end
  local t = tonumber(s)
  return t and math.max(0, os.time() - t) or nil
end

-- a legend of colour swatches as HTML: items = {{class =, label =}}
function M.legend(items, attrs)
  local t = {}
  for _, it in ipairs(items) do
    t[#t + 1] = string.format('<span class="item %s"><span class="sw"></span><span class="lbl">%s</span></span>', it.class, esc(it.label))
  end
  return string.format('<div class="legend"%s>%s</div>', attrs or "", table.concat(t))
end

return M
