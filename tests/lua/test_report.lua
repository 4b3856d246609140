-- The HTML reports in a real browser: a tiny real run (the trainer writes its page at each epoch
-- and at the end), a tiny real sweep (a 2 x 2 grid, 2 seeds) and a synthetic 200-trial sweep folder
-- are opened in headless Chromium (--dump-dom: the page after its script ran; console messages
-- on stderr). Each page must load without a console message or a request (nothing but inline
-- content and data: URLs), hold its plots and tables by id, every plot with marks at finite
-- coordinates, and show the numbers of summary.json and results.jsonl. Broken copies (a plot
-- without data, a number that no longer matches, a script error, an external image) must fail
-- the same checks. Screenshots (1200 x 2000) are left in the scratch folder for a look.
-- Skipped without Chromium (Debian's chromium, installed by `make test-deps`) or Fashion-MNIST.
local tap = require "tap"
local vr = require "visreg"
local util = vr.util
local q = util.shell_quote
local exe = VISREG_EXE
local sh = tap.sh

if not tap.can_train("reports") then os.exit(tap.done(), true) end
local rc0, chrome = sh("command -v chromium || command -v chromium-browser")
chrome = chrome:match("^%s*(%S+)")
if rc0 ~= 0 or not chrome then
  tap.skip("reports in a browser", "needs Debian's chromium (make test-deps installs it)")
  os.exit(tap.done(), true)
end

local base = tap.scratch("report")

---------------------------------------------------------------- the checks
-- what the browser made of a page: the DOM after scripts ran and the log; shot writes a screenshot
local function browse(file, shot)
  local err = base .. "/chrome.log"
  local flags = " --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars --enable-logging=stderr --v=0 "
  local p = io.popen("timeout 90 " .. q(chrome) .. flags .. "--dump-dom " .. q("file://" .. file) .. " 2>" .. q(err))
  local dom = p:read("*a")
  p:close()
  local log = util.read_file(err) or ""
  if shot then
    os.execute("timeout 90 " .. q(chrome) .. flags .. "--window-size=1200,2000 --screenshot=" .. q(shot) .. " " ..
      q("file://" .. file) .. " >/dev/null 2>&1")
  end
  return dom, log
end

-- what must never be in a report's HTML: a URL that reaches out (src, href, url(), @import)
local function static_problems(text)
  local bad = {}
  local function url(v)
    v = v:gsub("^%s*['\"]?", "")
    if v:match("^[hH][tT][tT][pP][sS]?:") or v:match("^//") or v:match("^[fF][tT][pP]:") then bad[#bad + 1] = v end
  end
  for _, a in ipairs { "src", "href", "xlink:href", "action", "poster", "data" } do
    for v in text:gmatch("%s" .. a:gsub("%p", "%%%0") .. "%s*=%s*\"([^\"]*)\"") do url(v) end
    for v in text:gmatch("%s" .. a:gsub("%p", "%%%0") .. "%s*=%s*'([^']*)'") do url(v) end
  end
  for v in text:gmatch("url%(([^)]*)%)") do url(v) end
  for v in text:gmatch("@import%s+([^;]*)") do bad[#bad + 1] = "@import " .. v end
  return bad
end

-- the browser's log: any console message (errors, Uncaught exceptions, CSP refusals) or a failed
-- request is a problem
local function log_problems(log)
  local bad = {}
  for line in log:gmatch("[^\n]+") do
    if line:find("CONSOLE", 1, true) or line:find("Uncaught", 1, true) or line:find("net::ERR", 1, true)
      or line:find("Failed to load", 1, true) or line:find("Content Security Policy", 1, true) then
      bad[#bad + 1] = line
    end
  end
  return bad
end

-- the element with an id: its opening tag and its text up to its end (an <svg> to its </svg>, a
-- <table> to its </table>, a <div> container to its last </svg>)
local function element(dom, id)
  local s, e, tag = dom:find('<(%w+)[^>]-%sid="' .. id:gsub("%p", "%%%0") .. '"')
  if not s then return nil end
  local close = dom:find("</" .. tag .. ">", e, true)
  if tag == "div" then -- a container of plots: up to the next section
    close = dom:find("<h2", e, true) or #dom
  end
  return dom:sub(s, close or #dom), tag
end

-- a plot's marks: circles, data paths (not the grid or frame) and cells or bars with a value; and
-- the first coordinate that is not a finite number
local function plot_marks(svg)
  local n, bad = 0, nil
  local function num(v, what)
    local x = tonumber(v)
    if not x or x ~= x or x == math.huge or x == -math.huge then bad = bad or (what .. "=" .. tostring(v)) end
  end
  for attrs in svg:gmatch("<circle([^>]*)>") do
    n = n + 1
    num(attrs:match(' cx="([^"]*)"'), "cx")
    num(attrs:match(' cy="([^"]*)"'), "cy")
  end
  for attrs in svg:gmatch("<path([^>]*)>") do
    if not attrs:find('class="gr"', 1, true) and not attrs:find('class="fr"', 1, true) then
      local d = attrs:match(' d="([^"]*)"') or ""
      if d:find("[nN][aA][nN]") or d:find("[iI]nf") or d == "" then bad = bad or ("d=" .. d:sub(1, 60)) end
      for v in d:gmatch("[-%d.e]+") do num(v, "d") end
      n = n + 1
    end
  end
  for attrs in svg:gmatch("<rect([^>]*)>") do
    if attrs:find("data-v=", 1, true) then
      n = n + 1
      num(attrs:match(' x="([^"]*)"'), "x")
      num(attrs:match(' width="([^"]*)"'), "width")
    end
  end
  return n, bad
end

-- every problem of a page: its log, its URLs, the ids it must hold (plots with marks, tables
-- with rows), and want.numbers(dom) for its numbers
local function page_problems(file, want, shot)
  local text = util.read_file(file) or ""
  local dom, log = browse(file, shot)
  local bad = {}
  local function add(fmt, ...) bad[#bad + 1] = string.format(fmt, ...) end
  if not dom:find("</html>", 1, true) then add("the browser gave no page (%d bytes)", #dom) end
  for _, l in ipairs(log_problems(log)) do add("log: %s", l) end
  for _, u in ipairs(static_problems(text)) do add("an outside URL: %s", u) end
  if not dom:find('data-load-ms="', 1, true) then add("the page's script did not run to the load event") end
  for _, id in ipairs(want.ids or {}) do
    local el, tag = element(dom, id)
    if not el then
      add("%s: missing", id)
    elseif id:match("^plot%-") then
      local svgs = {}
      if tag == "svg" then svgs[1] = el else for svg in el:gmatch("<svg.-</svg>") do svgs[#svgs + 1] = svg end end
      if #svgs == 0 then add("%s: no plot inside", id) end
      for _, svg in ipairs(svgs) do
        local sid = svg:match(' id="([^"]*)"') or id
        if svg:find('data-empty="true"', 1, true) then add("%s: no data", sid) end
        local n, b = plot_marks(svg)
        if n == 0 then add("%s: nothing drawn", sid) end
        if b then add("%s: a coordinate that is not a finite number: %s", sid, b) end
      end
    elseif id:match("^table%-") then
      local body = el:match("<tbody>(.*)</tbody>") or ""
      if not body:find("<td", 1, true) then add("%s: no rows", id) end
    end
  end
  if want.numbers then
    for _, p in ipairs(want.numbers(dom)) do add("%s", p) end
  end
  -- every plot on the page draws something
  for sid in dom:gmatch('<svg[^>]-%sid="([^"]*)"') do
    local svg = element(dom, sid)
    if want.all_plots and svg:find('data-empty="true"', 1, true) then add("%s: no data", sid) end
  end
  local ms = tonumber(dom:match('data%-load%-ms="(%d+)"'))
  return bad, ms, #text
end

local function show(bad) return #bad == 0 and "" or table.concat(bad, "\n  ", 1, math.min(#bad, 12)) end

-- the cell of a row (by data-key, or data-trial) whose td has data-key (or is the value column)
local function row_value(dom, table_id, row_attr, row_val, key)
  local t = element(dom, table_id) or ""
  for attrs, cells in t:gmatch("<tr([^>]*)>(.-)</tr>") do
    if attrs:match(row_attr .. '="([^"]*)"') == tostring(row_val) then
      if not key then
        local td = cells:match('<td[^>]*data%-value="[^"]*"[^>]*>[^<]*</td>')
        if td then return td:match('data%-value="([^"]*)"'), td:match(">([^<]*)</td>") end
      else
        for td in cells:gmatch("<td[^>]*>.-</td>") do
          if td:match('data%-key="([^"]*)"') == key then return td:match('data%-value="([^"]*)"'), td:match(">([^<]*)</td>") end
        end
      end
    end
  end
end

---------------------------------------------------------------- a real run
local run = base .. "/run"
local t0 = vr.now()
local rc, out = sh(q(exe) .. " train recipes/fmnist_visreg.lua --set epochs=2 --set data.subset=512 --set batch=64 " ..
  "--set data.test_subset=500 --set log.every=1 --set loss.lambda=0.6 --set log.progress=plain --out " .. q(run))
tap.ok(rc == 0, "a tiny run trains", out)
print(string.format("# the run took %.1f s", vr.now() - t0))
for _, f in ipairs { "report.html", "analysis.json", "overrides.json", "schedules.json" } do
  tap.ok(util.file_exists(run .. "/" .. f), "the trainer wrote " .. f)
end
local summary = util.json_decode(util.read_file(run .. "/summary.json"))
local analysis = util.json_decode(util.read_file(run .. "/analysis.json") or "{}")
local diag, total = 0, 0
for i, row in ipairs(analysis.knn and analysis.knn.confusion or {}) do
  for j, c in ipairs(row) do total = total + c; if i == j then diag = diag + c end end
end
tap.ok(analysis.knn and #analysis.knn.confusion == 10 and #analysis.knn.per_class == 10 and total == 500 and
  math.abs(diag / total - summary.knn) < 1e-9, "analysis.json: the predictions of the run's own kNN evaluation (its confusion " ..
  "matrix gives summary.json's accuracy) and the accuracy per class", string.format("%d/%d vs %s", diag, total, tostring(summary.knn)))
tap.ok(analysis.spectra and #analysis.spectra.projector.eigenvalues == 128 and #analysis.spectra.encoder.eigenvalues > 0,
  "analysis.json: the projector's and the encoder's covariance spectra")
local ov = util.json_decode(util.read_file(run .. "/overrides.json"))
local differs = {}
for _, o in ipairs(ov.overrides) do differs[o.key] = o.differs end
tap.ok(differs.epochs == true and differs["loss.lambda"] == false, "overrides.json tells an override that changes the file's value from one that does not")

local RUN_IDS = { "table-summary", "table-overrides", "table-recipe", "plot-loss", "plot-term-invariance", "plot-term-reg", "plot-term-shape",
  "plot-term-probe-loss", "plot-lr", "plot-lambda", "plot-grad-norm", "plot-online-probe", "plot-embedding-std", "plot-effective-rank",
  "plot-throughput", "plot-spectrum", "table-spectrum", "plot-knn-per-class", "plot-confusion" }
local function run_numbers(dir)
  return function(dom)
    local bad = {}
    local s = util.json_decode(util.read_file(dir .. "/summary.json"))
    for k, v in pairs(s) do
      if type(v) == "number" then
        local got, text = row_value(dom, "table-summary", "data%-key", k)
        if got ~= util.json_encode(v) then
          bad[#bad + 1] = string.format("summary %s: the page has %s, summary.json %s", k, tostring(got), util.json_encode(v))
        elseif not (math.abs((tonumber(text) or 1e300) - v) <= 0.5e-4 * math.max(1, math.abs(v))) then
          bad[#bad + 1] = string.format("summary %s: the page shows %s for %s", k, tostring(text), util.json_encode(v))
        end
      end
    end
    local acc = (element(dom, "plot-knn-per-class") or ""):match('data%-accuracy="([^"]*)"')
    if acc ~= util.json_encode(s.knn) then bad[#bad + 1] = string.format("kNN per class: accuracy %s, summary %s", tostring(acc), util.json_encode(s.knn)) end
    if not dom:find('data-status="done"', 1, true) then bad[#bad + 1] = "the page does not say the run finished" end
    return bad
  end
end
local bad, ms, size = page_problems(run .. "/report.html", { ids = RUN_IDS, numbers = run_numbers(run), all_plots = true }, base .. "/run.png")
tap.ok(#bad == 0, "the run's page (as the trainer wrote it) loads cleanly, holds every plot and table, and shows summary.json's numbers",
  show(bad))
print(string.format("# run page: %.0f kB, loaded in %s ms", size / 1024, tostring(ms)))
local rp = util.read_file(run .. "/report.html")
tap.ok(rp:find('<tr class="override" data-key="epochs">', 1, true) and rp:find('<tr class="same" data-key="loss.lambda">', 1, true)
  and rp:find('<tr data-key="batch" class="override">', 1, true), "the page highlights the overrides that differ from the file, and only those")

rc, out = sh(q(exe) .. " report " .. q(run))
tap.ok(rc == 0 and out:find("report.html", 1, true), "visreg report RUN_DIR writes the page again", out)

---------------------------------------------------------------- the same checks fail on broken pages
local broken = base .. "/broken"
os.execute("cp -r " .. q(run) .. " " .. q(broken) .. " && rm -f " .. q(broken .. "/checkpoint.safetensors"))
local lines = {}
for line in io.lines(broken .. "/metrics.jsonl") do if not line:find('"type":"step"', 1, true) then lines[#lines + 1] = line end end
util.write_file(broken .. "/metrics.jsonl", table.concat(lines, "\n") .. "\n") -- no step lines: the loss plot has no data
sh(q(exe) .. " report " .. q(broken))
bad = page_problems(broken .. "/report.html", { ids = RUN_IDS, numbers = run_numbers(broken) })
tap.ok(show(bad):find("plot-loss: no data", 1, true), "a plot without data fails the check", show(bad))
local s2 = util.json_decode(util.read_file(broken .. "/summary.json"))
s2.linear_probe = s2.linear_probe + 0.01
util.write_file(broken .. "/summary.json", util.json_encode(s2, "  ")) -- the page now disagrees with summary.json
bad = page_problems(broken .. "/report.html", { ids = RUN_IDS, numbers = run_numbers(broken) })
tap.ok(show(bad):find("summary linear_probe", 1, true), "a number that differs from summary.json fails the check", show(bad))
local page = util.read_file(run .. "/report.html")
util.write_file(broken .. "/script.html", (page:gsub("<script>", "<script>no_such_function();", 1)))
bad = page_problems(broken .. "/script.html", {})
tap.ok(show(bad):find("Uncaught", 1, true), "a script error fails the check", show(bad))
util.write_file(broken .. "/outside.html", (page:gsub("<main>", '<main><img src="https://example.org/x.png" alt="">', 1)))
bad = page_problems(broken .. "/outside.html", {})
tap.ok(show(bad):find("outside URL", 1, true) and show(bad):find("log:", 1, true), "an outside URL fails the check (and the page's policy refuses it)", show(bad))

-- a sweep's trial that failed: its page says so, with the reason and the end of its log
os.remove(broken .. "/summary.json")
util.write_file(broken .. "/trial.json", util.json_encode { status = "failed", reason = "diverged: the final loss is not a finite number",
  exit_status = 1, log_tail = "epoch 2/2 loss nan", attempts = 2 })
rc, out = sh(q(exe) .. " report " .. q(broken))
local fp = util.read_file(broken .. "/report.html") or ""
tap.ok(rc == 0 and fp:find('data-status="failed"', 1, true) and fp:find("diverged: the final loss is not a finite number (exit status 1)", 1, true)
  and fp:find("epoch 2/2 loss nan", 1, true), "a failed trial's page says it failed, why, and shows the end of its log", out)

-- a page that cannot be written only warns: training goes on to its summary
local nowrite = base .. "/nowrite"
util.mkdir_p(nowrite .. "/report.html/x") -- a folder where the page would go
rc, out = sh(q(exe) .. " train recipes/fmnist_visreg.lua --set epochs=1 --set data.subset=256 --set batch=64 --set data.test_subset=200 " ..
  "--set log.progress=plain --out " .. q(nowrite))
tap.ok(rc == 0 and util.file_exists(nowrite .. "/summary.json") and out:find("warning: report.html", 1, true) and out:find("training goes on", 1, true),
  "a report that fails warns and training finishes", out)

---------------------------------------------------------------- a page written during the run
local mid = base .. "/mid"
rc, out = sh(q(exe) .. " train recipes/fmnist_visreg.lua --set epochs=3 --set data.subset=512 --set batch=64 --set data.test_subset=500 " ..
  "--set log.progress=plain --stop-at-epoch 1 --out " .. q(mid))
local mp = util.read_file(mid .. "/report.html") or ""
tap.ok(rc == 0 and mp:find('data-status="running"', 1, true) and mp:find("epoch 1 of 3", 1, true) and not util.file_exists(mid .. "/analysis.json"),
  "after an epoch the page says the run is going (epoch 1 of 3) and has no end-of-run analysis yet", out)
sh("touch -d '2 hours ago' " .. q(mid .. "/metrics.jsonl"))
sh(q(exe) .. " report " .. q(mid))
mp = util.read_file(mid .. "/report.html") or ""
tap.ok(mp:find('data-status="interrupted"', 1, true) and mp:find("failed or was interrupted", 1, true) and mp:find("--resume", 1, true),
  "without summary.json and with stale metrics the page says the run did not finish (and how to resume it)")

---------------------------------------------------------------- a real sweep
local yaml = base .. "/four.yaml"
util.write_file(yaml, "recipe: " .. os.getenv("PWD") .. "/recipes/fmnist_visreg.lua\nname: four\n" ..
  "set: { epochs: 2, batch: 64, data.subset: 512, data.test_subset: 500, log.every: 2, eval.probe_iters: 50 }\n" ..
  "grid: { loss.lambda: [0.5, 0.8], model.width: [8, 16] }\nseeds: [0, 1]\nmetric: linear_probe\nparallel: 2\n")
local sw = base .. "/sweep"
t0 = vr.now()
rc, out = sh(q(exe) .. " sweep " .. q(yaml) .. " --out " .. q(sw))
tap.ok(rc == 0 and util.file_exists(sw .. "/report.html"), "a 4 x 2-seed sweep runs and writes its page", out)
print(string.format("# the sweep took %.1f s", vr.now() - t0))
local results = {}
for line in io.lines(sw .. "/results.jsonl") do local l = util.json_decode(line); results[#results + 1] = l end
tap.ok(util.file_exists(sw .. "/" .. results[1].folder .. "/report.html"), "each trial has its own page")

local SWEEP_IDS = { "table-configs", "table-results", "plot-metric-loss-lambda", "plot-metric-model-width", "plot-parallel", "plot-curves",
  "plot-curves-loss", "plot-curves-online-probe", "select-grouping", "table-importance", "plot-importance", "importance-method", "table-failed" }
local function sweep_numbers(dir)
  return function(dom)
    local bad = {}
    local ls = {}
    for line in io.lines(dir .. "/results.jsonl") do ls[#ls + 1] = util.json_decode(line) end
    local rows = select(2, (element(dom, "table-results") or ""):gsub("<tr data%-trial=", ""))
    if rows ~= #ls then bad[#bad + 1] = string.format("table-results: %d rows for %d trials", rows, #ls) end
    local by = {}
    for _, l in ipairs(ls) do
      for _, k in ipairs { "linear_probe", "knn" } do
        local v = l.summary and l.summary[k]
        local got = row_value(dom, "table-results", "data%-trial", l.index, k)
        if v ~= nil and got ~= util.json_encode(v) then
          bad[#bad + 1] = string.format("trial %d %s: the page has %s, results.jsonl %s", l.index, k, tostring(got), util.json_encode(v))
        end
      end
      local key = util.json_encode(l.values)
      by[key] = by[key] or {}
      if l.summary and l.summary.linear_probe then table.insert(by[key], l.summary.linear_probe) end
    end
    -- the best configuration's mean over its seeds
    local best = -math.huge
    for _, xs in pairs(by) do
      local s = 0
      for _, x in ipairs(xs) do s = s + x end
      if #xs > 0 then best = math.max(best, s / #xs) end
    end
    local best_row = (element(dom, "table-configs") or ""):match('<tr class="best">(.-)</tr>') or ""
    local first = tonumber(best_row:match('data%-value="([^"]*)"[^>]*data%-std')) -- the metric: the first mean +- std
    if not first or math.abs(first - best) > 1e-9 then bad[#bad + 1] = string.format("table-configs: best mean %s, results.jsonl %.10g", tostring(first), best) end
    return bad
  end
end
bad, ms, size = page_problems(sw .. "/report.html", { ids = SWEEP_IDS, numbers = sweep_numbers(sw), all_plots = true }, base .. "/sweep.png")
tap.ok(#bad == 0, "the sweep's page loads cleanly, holds every plot and table, and shows results.jsonl's numbers", show(bad))
print(string.format("# sweep page: %.0f kB, loaded in %s ms", size / 1024, tostring(ms)))
local sp = util.read_file(sw .. "/report.html")
local sorted = sp:find('<table id="table-results" class="sortable">', 1, true) and sp:find('<select id="select-grouping"', 1, true)
tap.ok(sorted and sp:find('data-groups="', 1, true), "the results table sorts; the grouping select recolours the curves")
-- a results.jsonl number changed after the page: the check sees it
local sb = base .. "/sweep-broken"
os.execute("mkdir -p " .. q(sb) .. " && cp " .. q(sw .. "/results.jsonl") .. " " .. q(sw .. "/report.html") .. " " .. q(sb))
local txt = util.read_file(sb .. "/results.jsonl")
local v1 = util.json_encode(results[1].summary.linear_probe)
util.write_file(sb .. "/results.jsonl", (txt:gsub('"linear_probe":' .. v1:gsub("%p", "%%%0"), '"linear_probe":0.123', 1)))
bad = page_problems(sb .. "/report.html", { ids = SWEEP_IDS, numbers = sweep_numbers(sb) })
tap.ok(show(bad):find("trial 0 linear_probe", 1, true), "a trial's number that differs from results.jsonl fails the check", show(bad))

-- the page's script at work: a click on a header sorts the trials, the select recolours the
-- curves and shows its legend, a row under the pointer picks out its line (a script appended to a
-- copy acts as the reader and leaves what it saw on <body>)
local probe_js = [[<script>
(function(){
var d=document,b=d.body,t=d.getElementById('table-results'),hs=t.tHead.rows[0].cells,col=-1;
for(var i=0;i<hs.length;i++)if(hs[i].textContent==='linear_probe')col=i;
function first(){return t.tBodies[0].rows[0].getAttribute('data-trial')}
hs[col].click();b.setAttribute('data-asc',first());
hs[col].click();b.setAttribute('data-desc',first()+' '+hs[col].getAttribute('aria-sort'));
var s=d.getElementById('select-grouping');s.value='1';s.dispatchEvent(new Event('change'));
var g=d.querySelector('#plot-curves-loss [data-trial="0"]');b.setAttribute('data-class0',g.getAttribute('class'));
var lg=d.querySelectorAll('#plot-curves .legend');b.setAttribute('data-legends',lg[0].hidden+' '+lg[1].hidden);
var r=d.querySelector('#table-results tr[data-trial="3"]');r.dispatchEvent(new MouseEvent('mouseenter'));
b.setAttribute('data-hi',String(d.querySelectorAll('#plot-parallel .hi[data-trial="3"]').length));
})();
</script></body>]]
util.write_file(sb .. "/acting.html", (sp:gsub("</body>", function() return probe_js end, 1)))
local dom, log = browse(sb .. "/acting.html")
local lo, hi = math.huge, -math.huge
local lo_i, hi_i
for _, l in ipairs(results) do
  local v = l.summary.linear_probe
  if v < lo or (v == lo and l.index < lo_i) then lo, lo_i = v, l.index end
  if v > hi then hi, hi_i = v, l.index end
end
local width_group = results[1].values["model.width"] == 8 and "k1" or "k2"
tap.ok(dom:match('data%-asc="(%d+)"') == tostring(lo_i) and dom:match('data%-desc="([^"]*)"') == hi_i .. " descending",
  "a click on a header sorts the trials by it, a second click the other way", string.format("%s %s (want %s, %s)",
  tostring(dom:match('data%-asc="([^"]*)"')), tostring(dom:match('data%-desc="([^"]*)"')), lo_i, hi_i))
tap.ok(dom:match('data%-class0="([^"]*)"') == "trial " .. width_group and dom:match('data%-legends="([^"]*)"') == "true false",
  "the grouping select recolours each trial's curve by the chosen value and shows that value's legend",
  tostring(dom:match('data%-class0="([^"]*)"')) .. " / " .. tostring(dom:match('data%-legends="([^"]*)"')))
tap.ok(dom:match('data%-hi="(%d+)"') == "1" and #log_problems(log) == 0, "a row under the pointer picks out its trial's line", show(log_problems(log)))

---------------------------------------------------------------- 200 trials
-- a synthetic sweep folder: random search over four values (one of them a list), 2 seeds, 30
-- epochs a trial (and 5 step lines an epoch), some failed, stopped, running and pending trials
local big = base .. "/big"
util.mkdir_p(big)
math.randomseed(7)
local rec = { format = "visreg-sweep-1", recipe = "recipes/fmnist_visreg.lua", metric = "linear_probe", mode = "max", trials = {},
  set = { { "epochs", 30 } } }
local blines = {}
for i = 0, 199 do
  local cfg = math.floor(i / 2)
  math.randomseed(1000 + cfg)
  local lr = 10 ^ (-4 + 2 * math.random())
  local lambda = tonumber(string.format("%.3f", 0.3 + 0.6 * math.random()))
  local width = ({ 8, 16, 32 })[math.random(3)]
  local projector = ({ { 512, 512, 128 }, { 256, 128 } })[math.random(2)]
  local seed = i % 2
  math.randomseed(i)
  local values = { { "optim.lr", lr }, { "loss.lambda", lambda }, { "model.width", width }, { "model.projector", projector } }
  local folder = string.format("%04d-trial-seed=%d", i, seed)
  rec.trials[#rec.trials + 1] = { index = i, folder = folder, seed = seed, values = values }
  local status = (i % 37 == 5) and "failed" or (i % 41 == 7) and "stopped" or (i == 198) and "running" or (i == 199) and "pending" or "done"
  local acc = 0.9 - 0.08 * math.abs(math.log10(lr) + 3) - 0.1 * math.abs(lambda - 0.6) + 0.01 * math.log(width) + 0.01 * (math.random() - 0.5)
  local l = { index = i, folder = folder, status = status, seed = seed, attempts = 1, values = {} }
  for _, kv in ipairs(values) do l.values[kv[1]] = kv[2] end
  l.wall_seconds = 100 + 50 * math.random()
  local epochs = status == "done" and 30 or (status == "stopped" and 2 or (status == "failed" and 7 or (status == "running" and 12 or 0)))
  if status == "done" then
    l.exit_status = 0
    l.summary = { linear_probe = acc, knn = acc - 0.02, online_probe = acc - 0.1, final_loss = 0.2 + 0.1 * math.random(), epochs = 30 }
  elseif status == "failed" then
    l.exit_status, l.reason = 1, "diverged: the final loss is not a finite number"
    l.log_tail = "epoch 7/30 loss nan\nvisreg: the loss is not a finite number"
  elseif status == "stopped" then
    l.stopped_at, l.rung_metric = 2, acc - 0.3
  end
  blines[#blines + 1] = util.json_encode(l)
  if epochs > 0 then
    util.mkdir_p(big .. "/" .. folder)
    local m = {}
    for e = 0, epochs - 1 do
      for s = 1, 5 do
        m[#m + 1] = util.json_encode { type = "step", epoch = e, step = e * 5 + s, loss = 1 / (e + 1) + 0.05 * math.random(), lr = lr }
      end
      m[#m + 1] = util.json_encode { type = "epoch", epoch = e, step = e * 5 + 5, loss = 0.3 + 1 / (e + 2) + 0.01 * math.random(),
        online_probe = acc - 0.1 - 0.3 / (e + 1), seconds = 3 }
    end
    util.write_file(big .. "/" .. folder .. "/metrics.jsonl", table.concat(m, "\n") .. "\n")
  end
end
util.write_file(big .. "/sweep.json", util.json_encode(rec, "  ") .. "\n")
util.write_file(big .. "/results.jsonl", table.concat(blines, "\n") .. "\n")
t0 = vr.now()
rc, out = sh(q(exe) .. " report " .. q(big))
local gen = vr.now() - t0
tap.ok(rc == 0, "visreg report SWEEP_DIR writes a 200-trial sweep's page", out)
local BIG_IDS = { "table-configs", "table-results", "plot-metric-optim-lr", "plot-metric-loss-lambda", "plot-metric-model-width",
  "plot-metric-model-projector", "plot-parallel", "plot-curves", "plot-curves-loss", "table-importance", "plot-importance", "table-failed" }
bad, ms, size = page_problems(big .. "/report.html", { ids = BIG_IDS, numbers = sweep_numbers(big) }, base .. "/big.png")
tap.ok(#bad == 0, "the 200-trial page loads cleanly with every plot and table and results.jsonl's numbers", show(bad))
tap.ok(size < 3 * 1024 * 1024, string.format("the 200-trial page stays under 3 MB (%.0f kB)", size / 1024))
tap.ok(ms ~= nil, "the 200-trial page reaches its load event (load times are measured, not asserted: machines are shared)")
print(string.format("# 200-trial page: %.0f kB, written in %.2f s, loaded in %s ms", size / 1024, gen, tostring(ms)))
local bp = util.read_file(big .. "/report.html")
local failed_rows = select(2, (element(bp, "table-failed") or ""):gsub('<tr data%-trial=', ""))
tap.ok(failed_rows == 6 + 5 + 2 and bp:find("diverged: the final loss", 1, true) and bp:find("stopped by successive halving after epoch 2", 1, true),
  "failed, stopped and unfinished trials are listed with their reasons", failed_rows)
tap.ok(bp:find("plot-metric-optim-lr", 1, true) and bp:find('optim.lr (log scale)', 1, true), "a log-spaced value gets a log axis")

-- what is kept: the screenshots and the pages (the run and sweep folders go, unless
-- VISREG_KEEP_SCRATCH is set)
os.execute("cd " .. q(base) .. " && cp run/report.html run.html && cp sweep/report.html sweep.html && cp big/report.html big.html")
if not os.getenv("VISREG_KEEP_SCRATCH") then
  os.execute("cd " .. q(base) .. " && rm -rf run broken nowrite mid sweep sweep-broken big four.yaml chrome.log")
end
print("# screenshots and pages in " .. base)
os.exit(tap.done(), true)
