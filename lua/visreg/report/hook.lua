-- visreg.report.hook: what the trainer and the sweep driver call to keep the reports current.
-- Every entry is protected: a report that fails prints a warning and training (or the sweep) goes
-- on.
--
--   hook.epoch(trainer)          after each epoch: the run's page, and once per process the data
--                                the page needs from the recipe (overrides.json: each --set value
--                                beside the file's own; schedules.json: every scheduled value over
--                                the whole run)
--   hook.finish(trainer)         after the final evaluation: analysis.json (the covariance spectra
--                                of the projector's and the encoder's test features, kNN accuracy
--                                per class and the confusion matrix, from the features evaluation
--                                extracted) and the finished page
--   hook.sweep(dir, trial)       after a trial: its page, and the sweep's (at most every 5 s);
--                                at the sweep's end (no trial): the sweep's page
local util = require "visreg.util"

local M = {}

local function warn(what, err)
  io.stderr:write(string.format("warning: %s: %s (training goes on)\n", what, tostring(err)))
end

local function protected(what, fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then warn(what, err) end
  return ok
end

local function json_of(v)
  if type(v) == "function" then return util.json_encode(v) end
  return v
end

-- overrides.json: each --set beside the value the recipe file gives (the file is the one the
-- trainer already runs; the report itself never runs it)
local function write_overrides(self, out)
  local recipe = require "visreg.recipe"
  local ovs = self.opts.overrides or {}
  local resolved = util.json_decode(util.read_file(out .. "/recipe.json") or "{}") or {}
  local base
  if self.opts.source then
    local ok, r = pcall(recipe.load_source, self.opts.source, self.opts.recipe_path or "recipe.lua", {})
    if ok then base = r end
  end
  local rows = {}
  for _, s in ipairs(ovs) do
    local key, text = tostring(s):match("^%s*([^=]-)%s*=(.*)$")
    if key then
      local value = recipe.get(resolved, key)
      local row = { key = key, text = text, value = json_of(value) }
      if base then
        local fv = recipe.get(base, key)
        row.file_value = json_of(fv)
        row.differs = util.json_encode(row.file_value) ~= util.json_encode(row.value)
      else
        row.differs = true
      end
      rows[#rows + 1] = row
    end
  end
  util.write_file(out .. "/overrides.json", util.json_encode({ overrides = rows, recipe = self.opts.recipe_path,
    file_known = base ~= nil }, "  ") .. "\n")
end

-- schedules.json: every scheduled key's value over the run (at most 400 steps of it)
local function write_schedules(self, out)
  local schedule = require "visreg.schedule"
  local recipe = require "visreg.recipe"
  local r = self.r
  if not r.schedule or next(r.schedule) == nil or not self.loader then return end
  local spe = self.loader:num_batches()
  local total = spe * r.epochs
  local ctx = { steps_per_epoch = spe, total_steps = total, epochs = r.epochs }
  local resolved = util.json_decode(util.read_file(out .. "/recipe.json") or "{}") or {}
  local n = math.min(total, 400)
  local keys = {}
  for key, s in pairs(r.schedule) do
    local path = schedule.resolve_key(key)
    local base = recipe.get(resolved, path)
    local steps, values = {}, {}
    for i = 0, n - 1 do
      local step = n > 1 and math.floor(i * (total - 1) / (n - 1) + 0.5) or 0
      local ok, v = pcall(schedule.value, s, base, math.floor(step / spe), step, ctx)
      steps[#steps + 1] = step
      values[#values + 1] = ok and type(v) == "number" and v or 0 / 0
    end
    keys[path] = { steps = steps, values = values }
  end
  util.write_file(out .. "/schedules.json", util.json_encode({ steps_per_epoch = spe, total_steps = total, keys = keys }) .. "\n")
end

local function page(self, state)
  self.report_cache = self.report_cache or {} -- metrics.jsonl is decoded once, a little after each epoch
  require("visreg.report.run").write(self.opts.out, { state = state, cache = self.report_cache })
end

function M.epoch(self)
  local out = self.opts and self.opts.out
  if not out then return end
  if not self.report_planned then
    self.report_planned = true
    protected("overrides.json", write_overrides, self, out)
    protected("schedules.json", write_schedules, self, out)
  end
  protected("report.html", page, self, "running")
end

---------------------------------------------------------------- analysis.json
local function spectrum(x)
  local metrics = require "visreg.metrics"
  local s = metrics.spectrum(x)
  local h = 0
  for _, p in ipairs(s.explained) do if p > 0 then h = h - p * math.log(p) end end
  return { dims = #s.eigenvalues, eigenvalues = s.eigenvalues, explained = s.explained, total = s.total,
    dims_90 = s.dims_90, dims_95 = s.dims_95, dims_99 = s.dims_99, effective_rank = math.exp(h) }
end

-- the analysis of the test split from the features evaluation extracted (self.eval_features):
-- spectra of the encoder's features and of the projector's outputs, kNN per class and confusion
function M.analysis(self, summary_knn)
  local f = self.eval_features
  if not f or not f.test then return nil end
  local tensor = require "visreg.tensor"
  local probe = require "visreg.probe"
  local r = self.r
  local out = { format = "visreg-analysis-1", split = "test", n = f.test:size(0), spectra = {} }
  out.spectra.encoder = spectrum(f.test)
  local proj = self.proj
  local was = proj.training
  proj:eval()
  local ok, z = pcall(tensor.no_grad, function()
    local parts, n, bs = {}, f.test:size(0), 1000
    for i = 0, n - 1, bs do parts[#parts + 1] = proj(f.test:narrow(0, i, math.min(bs, n - i))):detach() end
    return tensor.cat(parts, 0)
  end)
  proj:train(was)
  if not ok then error(z, 0) end
  out.spectra.projector = spectrum(z)
  if f.train and f.train_labels and f.test_labels and self.num_classes > 0 then
    local kk = type(r.eval.knn) == "table" and r.eval.knn or {}
    local k, T = kk.k or 20, kk.T or 0.07
    local nc = self.num_classes
    local pred_t, acc = self.knn_predictions, summary_knn
    if not pred_t then -- the evaluation did not keep its predictions: the same kNN again
      acc, pred_t = probe.knn(f.train, f.train_labels, f.test, f.test_labels, { num_classes = nc, k = k, T = T,
        predictions = true })
    end
    local confusion, per_class, all, count = probe.confusion(pred_t, f.test_labels, nc)
    acc = acc or all
    out.knn = { k = k, T = T, accuracy = acc, per_class = per_class, count = count, confusion = confusion,
      classes = require("visreg.embedding").class_names[r.data.kind] }
  end
  return out
end

local function finish(self, summary)
  local out = self.opts.out
  local a = M.analysis(self, summary and summary.knn)
  if a then util.write_file(out .. "/analysis.json", util.json_encode(a) .. "\n") end
end

function M.finish(self, summary)
  local out = self.opts and self.opts.out
  if out then protected("analysis.json", finish, self, summary) end
  self.eval_features, self.knn_predictions = nil, nil
  if out then protected("report.html", page, self, "done") end
end

---------------------------------------------------------------- sweeps
-- the sweep's page is written again at most every few seconds while trials finish (a large sweep's
-- page takes a fraction of a second), and always at the end (no trial given)
local last_sweep_page = {}
M.SWEEP_PAGE_EVERY = 5

local function sweep_pages(dir, trial)
  local now = require("visreg.core").now()
  if trial and trial.folder then
    local tdir = dir .. "/" .. trial.folder
    if util.file_exists(tdir .. "/run.json") or util.file_exists(tdir .. "/trial.json") then
      require("visreg.report.run").write(tdir)
    end
    if last_sweep_page[dir] and now - last_sweep_page[dir] < M.SWEEP_PAGE_EVERY then return end
  end
  require("visreg.report.sweep").write(dir)
  last_sweep_page[dir] = now
end

function M.sweep(dir, trial)
  protected("the sweep's report.html", sweep_pages, dir, trial)
end

return M
