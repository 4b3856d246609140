-- visreg.report.run: a run folder as one HTML page (RUN_DIR/report.html), from the folder's files
-- alone: recipe.json, run.json, metrics.jsonl, summary.json, and when the trainer wrote them
-- overrides.json, schedules.json and analysis.json (visreg.report.hook); trial.json when the run is
-- a sweep's trial. The model is never loaded and nothing in the folder is run.
--
-- Element ids: table-summary, table-overrides, table-recipe, plot-loss, plot-term-NAME (each loss
-- term), plot-lr, plot-lambda, plot-schedule-KEY (every other scheduled value), plot-grad-norm,
-- plot-online-probe, plot-embedding-std, plot-effective-rank, plot-throughput, and after the run
-- plot-spectrum, table-spectrum, plot-knn-per-class, plot-confusion. The status is on <body> as
-- data-status (done, running, failed, stopped, interrupted, paused, unknown).
local util = require "visreg.util"
local plot = require "visreg.plot"
local html = require "visreg.report.html"

local M = {}
local esc, finite, fmt = html.esc, html.finite, html.fmt

-- the step and epoch lines of metrics.jsonl (a step or an epoch logged twice, as after a resume,
-- keeps its last line). cache (a table kept between calls, as the trainer does after each epoch)
-- makes a call decode only the lines added since the last one.
function M.read_metrics(path, cache)
  local c = cache or {}
  local f = io.open(path, "rb")
  if not f then return {}, {} end
  local size = f:seek("end")
  if not c.offset or size < c.offset then -- the first call, or a new run in the folder
    c.offset, c.by_step, c.by_epoch = 0, {}, {}
  end
  f:seek("set", c.offset)
  local text = f:read("*a") or ""
  f:close()
  local used = 0
  for line, stop in text:gmatch("([^\n]*)\n()") do -- whole lines only: one being written waits for the next call
    used = stop - 1
    local ok, e = pcall(util.json_decode, line)
    if ok and type(e) == "table" then
      if e.type == "step" and type(e.step) == "number" then c.by_step[e.step] = e
      elseif e.type == "epoch" and type(e.epoch) == "number" then c.by_epoch[e.epoch] = e end
    end
  end
  c.offset = c.offset + used
  local steps, epochs = {}, {}
  for k, e in pairs(c.by_step) do steps[#steps + 1] = { k, e } end
  for k, e in pairs(c.by_epoch) do epochs[#epochs + 1] = { k, e } end
  table.sort(steps, function(a, b2) return a[1] < b2[1] end)
  table.sort(epochs, function(a, b2) return a[1] < b2[1] end)
  for i, p in ipairs(steps) do steps[i] = p[2] end
  for i, p in ipairs(epochs) do epochs[i] = p[2] end
  return steps, epochs
end

-- everything the page shows, read from the folder
function M.read(dir, o)
  o = o or {}
  dir = dir:gsub("/+$", "")
  local d = { dir = dir }
  d.recipe = html.read_json(dir .. "/recipe.json")
  d.run = html.read_json(dir .. "/run.json")
  d.summary = html.read_json(dir .. "/summary.json")
  d.analysis = html.read_json(dir .. "/analysis.json")
  d.overrides = html.read_json(dir .. "/overrides.json")
  d.schedules = html.read_json(dir .. "/schedules.json")
  d.trial = html.read_json(dir .. "/trial.json")
  d.source = util.read_file(dir .. "/recipe.lua")
  d.steps, d.epochs = M.read_metrics(dir .. "/metrics.jsonl", o.cache)
  d.metrics_age = html.age(dir .. "/metrics.jsonl") or html.age(dir .. "/run.json")
  d.has_checkpoint = util.file_exists(dir .. "/checkpoint.safetensors")
  return d
end

---------------------------------------------------------------- the status
-- {state =, text =, detail =}: o.state "running" when the trainer writes the page during the run
function M.status(d, o)
  o = o or {}
  local total = d.recipe and d.recipe.epochs
  local done = #d.epochs > 0 and d.epochs[#d.epochs].epoch + 1 or 0
  local progress = string.format("epoch %d of %s", done, total and tostring(total) or "?")
  local longest = 0
  for _, e in ipairs(d.epochs) do if finite(e.seconds) then longest = math.max(longest, e.seconds) end end
  local stale_after = o.stale_after or math.max(600, 3 * longest)
  if d.summary then
    local fl = d.summary.final_loss
    if fl ~= nil and not finite(fl) then
      return { state = "failed", text = "diverged", detail = "the run finished, but its final loss is not a finite number" }
    end
    return { state = "done", text = "finished", detail = string.format("%d epochs, %s of training", d.summary.epochs or done,
      require("visreg.trainer").fmt_time(d.summary.train_seconds or 0)), stale_after = stale_after }
  end
  local t = d.trial
  if t and t.status == "failed" then
    return { state = "failed", text = "failed", detail = (t.reason or "the trial failed") ..
      (t.exit_status and string.format(" (exit status %s)", tostring(t.exit_status)) or ""), log = t.log_tail }
  end
  if t and t.status == "stopped" then
    return { state = "stopped", text = "stopped early", detail = string.format("stopped by successive halving after epoch %s%s",
      tostring(t.stopped_at or done), finite(t.rung_metric) and string.format(" (metric %s)", fmt(t.rung_metric)) or "") }
  end
  if o.state == "running" then
    return { state = "running", text = "running", detail = progress .. " (this page is written again after each epoch)",
      stale_after = stale_after }
  end
  if t and t.status == "paused" then
    return { state = "paused", text = "paused", detail = progress .. ": the sweep resumes it at the next rung" }
  end
  local age = d.metrics_age
  if age and age < stale_after then
    return { state = "running", text = "running", detail = string.format("%s, metrics last written %d s ago", progress, age),
      stale_after = stale_after }
  end
  local resume = d.has_checkpoint and string.format("; a checkpoint is there: visreg train --resume %s continues it", d.dir) or ""
  if not age then
    return { state = "unknown", text = "not started", detail = "no metrics.jsonl and no summary.json" }
  end
  return { state = "interrupted", text = "not finished", detail = string.format(
    "no summary.json and metrics.jsonl last written %s ago (%s): the run failed or was interrupted%s",
    require("visreg.trainer").fmt_time(age), progress, resume) }
end

---------------------------------------------------------------- plots
local function numbers_of(lines, key, xkey)
  local xs, ys = {}, {}
  for _, l in ipairs(lines) do
    if l[key] ~= nil then
      xs[#xs + 1] = xkey == "epoch1" and (l.epoch + 1) or l[xkey]
      ys[#ys + 1] = type(l[key]) == "number" and l[key] or 0 / 0
    end
  end
  return xs, ys
end

-- a log axis when the positive values span a decade or more (and none is <= 0)
local function wants_log(ys)
  local lo, hi = math.huge, -math.huge
  for _, y in ipairs(ys) do
    if finite(y) then
      if y <= 0 then return false end
      lo, hi = math.min(lo, y), math.max(hi, y)
    end
  end
  return lo < hi and hi / lo >= 10
end

-- a quantity over steps: the logged values faint, a moving average over them bold
local function step_plot(id, title, xs, ys, o)
  o = o or {}
  local log = o.log
  if log == nil then log = wants_log(ys) end
  local series = {}
  local few = #ys <= 24
  local ci = o.color_index or 1
  local smoothed = #ys >= 8 and o.smooth ~= false
  if smoothed then
    series[1] = { x = xs, y = ys, faint = true, color_index = ci, label = "logged" }
    series[2] = { x = xs, y = plot.smooth(ys, math.max(4, #ys / 30)), color_index = ci, label = "smoothed" }
  else
    series[1] = { x = xs, y = ys, color_index = ci, points = few, line = true, label = "logged" }
  end
  for _, s in ipairs(o.extra or {}) do series[#series + 1] = s end
  local svg = plot.svg(series, { id = id, inline = true, title = title, xlabel = o.xlabel or "step", ylabel = o.ylabel,
    log_y = log, width = 560, height = 300, legend = #series > (smoothed and 2 or 1) })
  local cap = {}
  if smoothed then cap[#cap + 1] = "Faint: every logged step; bold: their moving average." end
  if o.caption then cap[#cap + 1] = o.caption end
  if log then cap[#cap + 1] = "Log scale." end
  return html.figure(svg, #cap > 0 and table.concat(cap, " ") or nil)
end

local TERM_ORDER = { invariance = 1, reg = 2, center = 3, scale = 4, shape = 5, inv = 6, var = 7, cov = 8 }
local NOT_TERMS = { type = true, epoch = true, step = true, lr = true, lambda = true, images_per_second = true,
  grad_norm = true, loss = true, probe_loss = true }

-- the loss terms the step lines hold (each logged number that is not a setting or a rate)
local function loss_terms(steps)
  local seen, out = {}, {}
  for _, l in ipairs(steps) do
    for k, v in pairs(l) do
      if type(v) == "number" and not NOT_TERMS[k] and not seen[k] then seen[k] = true; out[#out + 1] = k end
    end
  end
  table.sort(out, function(a, b)
    local x, y = TERM_ORDER[a] or 99, TERM_ORDER[b] or 99
    if x ~= y then return x < y end
    return a < b
  end)
  return out
end

local function planned(d, path)
  local s = d.schedules and d.schedules.keys and d.schedules.keys[path]
  if s and type(s.steps) == "table" and type(s.values) == "table" then
    local xs = {}
    for i, st in ipairs(s.steps) do xs[i] = st + 1 end -- the value at step s is logged after it, as step s + 1
    return { x = xs, y = s.values, dash = true, label = "planned", color_index = 8 }
  end
end

local function training_plots(d)
  local out = {}
  local steps, epochs = d.steps, d.epochs
  local xs, ys = numbers_of(steps, "loss", "step")
  out[#out + 1] = step_plot("plot-loss", "loss", xs, ys, { ylabel = "loss" })
  for i, k in ipairs(loss_terms(steps)) do
    local tx, ty = numbers_of(steps, k, "step")
    out[#out + 1] = step_plot("plot-term-" .. html.slug(k), "loss term: " .. k, tx, ty, { color_index = i + 1, ylabel = k })
  end
  local px, py = numbers_of(steps, "probe_loss", "step")
  if #py > 0 then
    out[#out + 1] = step_plot("plot-term-probe-loss", "online probe loss (cross-entropy)", px, py, { color_index = 5 })
  end
  local lx, ly = numbers_of(steps, "lr", "step")
  local plan = planned(d, "optim.lr")
  local all = {}
  for _, v in ipairs(ly) do all[#all + 1] = v end
  if plan then for _, v in ipairs(plan.y) do all[#all + 1] = v end end
  out[#out + 1] = step_plot("plot-lr", "learning rate", lx, ly, { smooth = false, log = wants_log(all), extra = { plan },
    ylabel = "lr", caption = plan and "Dashed: the schedule over the whole run." or nil })
  local ax, ay = numbers_of(steps, "lambda", "step")
  if #ay > 0 then
    local lp = planned(d, "loss.lambda")
    out[#out + 1] = step_plot("plot-lambda", "lambda (loss.lambda)", ax, ay, { smooth = false, log = false, extra = { lp },
      color_index = 4, caption = lp and "Dashed: the schedule over the whole run." or nil })
  end
  if d.schedules and d.schedules.keys then
    for _, path in ipairs(util.sorted_keys(d.schedules.keys)) do
      if path ~= "optim.lr" and path ~= "loss.lambda" then
        local p = planned(d, path)
        out[#out + 1] = html.figure(plot.svg({ p }, { id = "plot-schedule-" .. html.slug(path), inline = true,
          title = "schedule: " .. path, xlabel = "step", width = 560, height = 300, legend = false, log_y = wants_log(p.y) }),
          "The scheduled value over the whole run.")
      end
    end
  end
  local gx, gy = numbers_of(steps, "grad_norm", "step")
  if #gy > 0 then out[#out + 1] = step_plot("plot-grad-norm", "gradient norm (before clipping)", gx, gy, { color_index = 6 }) end
  local ox, oy = numbers_of(epochs, "online_probe", "epoch1")
  out[#out + 1] = html.figure(plot.svg({ { x = ox, y = oy, points = true, line = true, color_index = 3 } }, { id = "plot-online-probe",
    inline = true, title = "online probe accuracy (training batches)", xlabel = "epoch", width = 560, height = 300, legend = false, x_integer = true }))
  local sx, sy = numbers_of(epochs, "embedding_std", "epoch1")
  out[#out + 1] = html.figure(plot.svg({ { x = sx, y = sy, points = true, line = true, color_index = 5 } }, { id = "plot-embedding-std",
    inline = true, title = "embedding std (mean over dimensions, last batch)", xlabel = "epoch", width = 560, height = 300, legend = false, x_integer = true }))
  local rx, ry = numbers_of(epochs, "effective_rank", "epoch1")
  out[#out + 1] = html.figure(plot.svg({ { x = rx, y = ry, points = true, line = true, color_index = 10 } }, { id = "plot-effective-rank",
    inline = true, title = "effective rank (RankMe of the last batch)", xlabel = "epoch", width = 560, height = 300, legend = false, x_integer = true }))
  local ix, iy = numbers_of(steps, "images_per_second", "step")
  local ex, ey = {}, {}
  for _, e in ipairs(epochs) do
    if e.images_per_second then ex[#ex + 1], ey[#ey + 1] = e.step, e.images_per_second end
  end
  out[#out + 1] = step_plot("plot-throughput", "images per second", ix, iy, { log = false, color_index = 7,
    extra = { { x = ex, y = ey, points = true, radius = 4, label = "epoch mean", color_index = 1 } } })
  return out
end

---------------------------------------------------------------- after the run
local function analysis_section(d)
  local a = d.analysis
  if not a then
    if d.summary then
      return '<p class="meta">No analysis.json: the run evaluated nothing at its end (eval.linear_probe and eval.knn off), or it ' ..
        "was trained before the trainer wrote one.</p>"
    end
    return '<p class="meta">The covariance spectra, the per-class kNN accuracy and the confusion matrix appear here at the end ' ..
      "of training (analysis.json).</p>"
  end
  local out = {}
  local series, rows = {}, {}
  for i, name in ipairs { "projector", "encoder" } do
    local s = a.spectra and a.spectra[name]
    if s and type(s.explained) == "table" then
      local top = 0
      for _, v in ipairs(s.explained) do if finite(v) then top = math.max(top, v) end end
      local ys = {}
      for k, v in ipairs(s.explained) do ys[k] = (finite(v) and v > top * 1e-12) and v or 0 / 0 end
      series[#series + 1] = { y = ys, label = string.format("%s (%d dims)", name, #ys), color_index = i, points = #ys <= 64, line = true,
        radius = 1.8 }
      rows[#rows + 1] = { attrs = string.format(' data-key="%s"', name), cells = { html.cell(name), html.cell(s.dims or #ys),
        html.cell(s.effective_rank), html.cell(s.dims_90), html.cell(s.dims_99), html.cell(s.explained[1]) } }
    end
  end
  out[#out + 1] = '<div class="grid">'
  out[#out + 1] = html.figure(plot.svg(series, { id = "plot-spectrum", inline = true, log_y = true, width = 620, height = 340,
    title = string.format("covariance spectra of the %s split (%s images)", a.split or "test", tostring(a.n or "?")),
    xlabel = "component (largest first)", ylabel = "share of variance" }),
    "Each eigenvalue of the covariance as a share of the total, log scale. A flat spectrum spreads the variance over many dimensions; a steep one collapses onto a few.")
  out[#out + 1] = "<div>" .. html.table { id = "table-spectrum", columns = { { label = "features" }, { label = "dims" },
    { label = "effective rank", title = "exp of the entropy of the eigenvalue shares (as RankMe)" },
    { label = "dims for 90%" }, { label = "dims for 99%" }, { label = "top share" } }, rows = rows } .. "</div>"
  out[#out + 1] = "</div>"
  local k = a.knn
  if k and type(k.per_class) == "table" then
    local labels, vals = {}, {}
    for c = 1, #k.per_class do
      labels[c] = (k.classes and k.classes[c]) or tostring(c - 1)
      vals[c] = type(k.per_class[c]) == "number" and k.per_class[c] or 0 / 0
    end
    out[#out + 1] = '<div class="grid">'
    out[#out + 1] = html.figure(plot.hbars(labels, vals, { id = "plot-knn-per-class", inline = true, max = 1, width = 560,
      title = string.format("kNN accuracy per class (k = %s, T = %s)", tostring(k.k or "?"), tostring(k.T or "?")),
      fmt = function(v) return string.format("%.1f%%", 100 * v) end, data = { accuracy = util.json_encode(k.accuracy) },
      note = k.accuracy and string.format("all classes: %.2f%%", 100 * k.accuracy) or nil }),
      "On the encoder's features of the test split, neighbours from the training split.")
    if type(k.confusion) == "table" then
      local norm = {}
      for i, row in ipairs(k.confusion) do
        local s = 0
        for _, v in ipairs(row) do s = s + v end
        norm[i] = {}
        for j, v in ipairs(row) do norm[i][j] = s > 0 and v / s or 0 end
      end
      out[#out + 1] = html.figure(plot.heatmap(k.confusion, { id = "plot-confusion", inline = true, color = norm, lo = 0, hi = 1,
        row_labels = labels, col_labels = labels, title = "kNN confusion matrix", ylabel = "true class", xlabel = "predicted class",
        text = function(_, _, v) return v > 0 and string.format("%d", v) or "" end, scale_label = "share of row" }),
        "Counts of test images; the colour is the share of the true class's images.")
    end
    out[#out + 1] = "</div>"
  end
  return table.concat(out, "\n")
end

---------------------------------------------------------------- the recipe
-- the recipe's key paths and values, in the file's nesting order (sorted keys)
local function flatten(t, prefix, out)
  out = out or {}
  for _, k in ipairs(util.sorted_keys(t)) do
    local v = t[k]
    local p = prefix == "" and tostring(k) or prefix .. "." .. tostring(k)
    local scalar_list = type(v) == "table" and util.is_array(v) and #v > 0
    if scalar_list then for _, x in ipairs(v) do if type(x) == "table" then scalar_list = false end end end
    if type(v) ~= "table" or scalar_list or next(v) == nil then out[#out + 1] = { p, v } else flatten(v, p, out) end
  end
  return out
end

local function overrides_of(d)
  local rows = {}
  if d.overrides and type(d.overrides.overrides) == "table" then
    for _, o in ipairs(d.overrides.overrides) do rows[#rows + 1] = o end
    return rows, true
  end
  for _, s in ipairs(d.run and d.run.overrides or {}) do
    local key, text = tostring(s):match("^%s*([^=]-)%s*=(.*)$")
    if key then rows[#rows + 1] = { key = key, text = text } end
  end
  return rows, false
end

local function recipe_section(d)
  local out = {}
  local ovs, known = overrides_of(d)
  local marked = {}
  if #ovs > 0 then
    local rows = {}
    for _, o in ipairs(ovs) do
      local differs = not known or o.differs
      if differs then marked[o.key] = true end
      local value = o.value
      if value == nil then value = o.text end
      rows[#rows + 1] = { attrs = string.format(' class="%s" data-key="%s"', differs and "override" or "same", esc(o.key)),
        cells = { html.cell(o.key), html.cell(value, { plain = true }), html.cell(known and o.file_value or nil,
          { text = known and html.value_text(o.file_value) or "?", plain = true }),
          html.cell(known and (o.differs and "changed" or "the file's value") or "?") } }
    end
    out[#out + 1] = "<h3>Command-line overrides (--set)</h3>"
    out[#out + 1] = html.table { id = "table-overrides", columns = { { label = "key" }, { label = "value" },
      { label = "in the recipe file" }, { label = "" } }, rows = rows }
    if not known then
      out[#out + 1] = '<p class="meta">overrides.json is missing (a run from before it was written): every override is marked.</p>'
    end
  else
    out[#out + 1] = '<p class="meta">No command-line overrides: the recipe as the file gives it.</p>'
  end
  if d.recipe then
    local rows = {}
    for _, kv in ipairs(flatten(d.recipe, "")) do
      local key = kv[1]
      local hit = false
      for k in pairs(marked) do
        if key == k or key:sub(1, #k + 1) == k .. "." then hit = true end
      end
      rows[#rows + 1] = { attrs = string.format(' data-key="%s"%s', esc(key), hit and ' class="override"' or ""),
        cells = { html.cell(key), html.cell(kv[2], { plain = true }) } }
    end
    out[#out + 1] = string.format("<h3>The resolved recipe (recipe.json%s)</h3>",
      next(marked) and "; highlighted: set on the command line to a value other than the file's" or "")
    out[#out + 1] = html.table { id = "table-recipe", columns = { { label = "key" }, { label = "value" } }, rows = rows, class = "recipe" }
  else
    out[#out + 1] = '<p class="meta">No recipe.json in the folder.</p>'
  end
  if d.source then
    out[#out + 1] = "<details><summary>recipe.lua (the file as it was run)</summary><pre>" .. esc(d.source) .. "</pre></details>"
  end
  return table.concat(out, "\n")
end

---------------------------------------------------------------- the page
local SUMMARY_ORDER = { "linear_probe", "knn", "online_probe", "final_loss", "effective_rank", "train_seconds", "eval_seconds",
  "images_per_second", "epochs", "steps", "device", "threads", "recipe" }

local function summary_section(d)
  local src = d.summary
  local note = ""
  if not src then
    src = {}
    local e = d.epochs[#d.epochs]
    if e then
      for _, k in ipairs { "loss", "online_probe", "embedding_std", "effective_rank", "images_per_second" } do src[k] = e[k] end
      note = string.format('<p class="meta">No summary.json yet: the numbers of the last epoch line (epoch %d).</p>', e.epoch + 1)
    else
      return '<p class="meta">No summary.json and no epoch line yet.</p>'
    end
  end
  local keys, seen = {}, {}
  for _, k in ipairs(SUMMARY_ORDER) do if src[k] ~= nil then keys[#keys + 1] = k; seen[k] = true end end
  for _, k in ipairs(util.sorted_keys(src)) do if not seen[k] then keys[#keys + 1] = k end end
  local rows = {}
  for _, k in ipairs(keys) do
    local v = src[k]
    if type(v) ~= "table" then
      rows[#rows + 1] = { attrs = string.format(' data-key="%s"', esc(k)), cells = { html.cell(k), html.cell(v) } }
    end
  end
  return note .. html.table { id = "table-summary", columns = { { label = d.summary and "summary.json" or "last epoch" },
    { label = "value" } }, rows = rows }
end

-- the page's HTML; o.state: "running" when written by the trainer during the run
function M.render(d, o)
  o = o or {}
  local st = M.status(d, o)
  local name = (d.summary and d.summary.recipe) or (d.recipe and d.recipe.name) or d.dir:match("([^/]+)$")
  local run = d.run or {}
  local parts = {}
  parts[#parts + 1] = string.format('<h1>run %s</h1>', esc(name))
  parts[#parts + 1] = string.format('<p><span id="run-status" class="status st-%s" data-status="%s">%s</span> %s</p>', st.state, st.state,
    esc(st.text), esc(st.detail or ""))
  if st.state == "running" then
    parts[#parts + 1] = string.format('<p class="notice" hidden data-written="%d" data-stale-after="%d">This page was written ' ..
      '<span class="age"></span> ago while the run was going; if it has ended since, <code>visreg report %s</code> brings it up to date.</p>',
      os.time(), st.stale_after or 600, esc(d.dir))
  elseif st.state == "failed" or st.state == "interrupted" then
    parts[#parts + 1] = string.format('<p class="notice bad">%s</p>', esc(st.detail or ""))
    if st.log then parts[#parts + 1] = "<details open><summary>the end of the log</summary><pre>" .. esc(st.log) .. "</pre></details>" end
  end
  local meta = { "folder " .. d.dir }
  if run.recipe then meta[#meta + 1] = "recipe " .. tostring(run.recipe) end
  if run.started then meta[#meta + 1] = "started " .. tostring(run.started) end
  if run.device then meta[#meta + 1] = string.format("%s, %s threads", tostring(run.device), tostring(run.threads or "?")) end
  if run.version then meta[#meta + 1] = "visreg " .. tostring(run.version) end
  parts[#parts + 1] = '<p class="meta">' .. esc(table.concat(meta, " \194\183 ")) .. "</p>"
  parts[#parts + 1] = '<p class="noprint"><a href="#summary">summary</a> \194\183 <a href="#training">training</a> \194\183 ' ..
    '<a href="#analysis">after training</a> \194\183 <a href="#recipe">recipe</a></p>'
  parts[#parts + 1] = '<h2 id="summary">Summary</h2>' .. summary_section(d)
  parts[#parts + 1] = '<h2 id="training">Training</h2><div class="grid">' .. table.concat(training_plots(d), "\n") .. "</div>"
  parts[#parts + 1] = '<h2 id="analysis">After training: the test split</h2>' .. analysis_section(d)
  parts[#parts + 1] = '<h2 id="recipe">Recipe</h2>' .. recipe_section(d)
  local page = html.page { title = "visreg run " .. name, body = table.concat(parts, "\n"), kind = "run", dir = d.dir,
    version = require("visreg").version }
  return (page:gsub('<body data%-report="run">', string.format('<body data-report="run" data-status="%s">', st.state), 1)), st
end

-- writes DIR/report.html (o.path elsewhere; o.state, o.cache as for render and read_metrics);
-- returns the path, its size in bytes and the status
function M.write(dir, o)
  o = o or {}
  local d = M.read(dir, o)
  local text, st = M.render(d, o)
  local path = o.path or (d.dir .. "/report.html")
  html.write(path, text)
  return path, #text, st
end

return M
