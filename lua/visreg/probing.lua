-- visreg.probing: the probing words of `visreg repl` and the metric table of `visreg probe`.
-- Every metric word takes embeddings from embed() (E) or any N x D tensor: rankme(E),
-- rankme(E.h), rankme(t). Each word is documented in the registry (visreg.doc: help(), ?word).
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local metrics = require "visreg.metrics"
local embedding = require "visreg.embedding"
local plot = require "visreg.plot"
local doc = require "visreg.doc"

local M = {}

-- the run the REPL was started with (embed(ds.test) and the words without a run use it)
M.current = nil

local function is_embedding(x) return getmetatable(x) == embedding.Embedding end
local function z_of(x, what)
  if is_embedding(x) then return x.z end
  if tensor.is_tensor(x) then return x end
  util.error("%s: expected embeddings from embed(...) or an N x D tensor, got %s", what, type(x))
end

-- the words; each entry: name, the function, its call, what it does and its reference
M.WORDS = {}
local function word(name, fn, call, text)
  M[name] = fn
  M.WORDS[#M.WORDS + 1] = { name = name, fn = fn, call = call, doc = text }
  doc.add(fn, call, text, { group = "probe" })
end

word("load_run", embedding.load_run, "load_run(dir [, {recipe = FILE, checkpoint = FILE, overrides = {...}, device =}])",
  "a run folder as a handle (recipe, enc, proj, ds, summary, history); rebuilds the model from the folder's recipe.lua")

word("embed", function(x, split, o)
  if type(split) == "table" then o, split = split, nil end
  local run = x
  if getmetatable(x) ~= embedding.Run then
    run = M.current
    if not run then util.error("embed: no run is loaded; embed(load_run(dir), \"test\") or start `visreg repl RUN_DIR`") end
    if x ~= nil then -- a dataset of the current run: which split is it?
      split = split or (x == run.ds.train and "train") or (x == run.ds.test and "test") or nil
      if not split then util.error("embed: expected a run, ds.train or ds.test, got %s", type(x)) end
    end
  end
  return embedding.embed(run, split, o)
end, "embed(run | ds.test | ds.train [, split] [, {n =, views =, batch =}])",
  "the eval pipeline without gradients: E.h (encoder), E.z (projector), E.labels, E.classes; views = V adds V augmented views (E.views), cached")

local function metric_word(name, call, doc)
  word(name, function(x, ...)
    if is_embedding(x) then return x[name](x, ...) end
    return metrics[name](z_of(x, name), ...)
  end, call, doc)
end
metric_word("stats", "stats(E | z)", "per-dimension mean and std summary, dead dimensions, mean row norm")
metric_word("spectrum", "spectrum(E | z)", "covariance eigenvalues (descending), explained and cumulative variance, dims for 90/95/99%")
metric_word("rankme", "rankme(E | z)", "RankMe (Garrido et al. 2023): exp entropy of the normalised singular values; D for isotropic data")
metric_word("alpha_req", "alpha_req(E | z)", "alpha-ReQ (Agrawal et al. 2022): decay of the covariance eigenvalues, lambda_k ~ k^-alpha")
metric_word("gaussianity", "gaussianity(E | z [, {slices = 256, seed = 0}])",
  "sliced W1 distance of standardised projections to N(0,1) (0 for Gaussian), the worst slices, excess kurtosis")
metric_word("uniformity", "uniformity(E | z [, t = 2])", "Wang & Isola 2020: log mean exp(-t |zi - zj|^2) over pairs of normalised rows")
word("lidar", function(x, o)
  if is_embedding(x) then return x:lidar(o) end
  return metrics.lidar(x, o)
end, "lidar(E | zv)", "LiDAR (Thilak et al. 2024): effective rank of the LDA matrix of augmented views (embed(..., {views = 8}))")
word("alignment", function(a, b)
  if is_embedding(a) then return a:alignment() end
  return metrics.alignment(a, b)
end, "alignment(E | a, b)", "Wang & Isola 2020: mean |a_i - b_i|^2 of normalised positive pairs (two views)")
word("cka", function(a, b) return metrics.cka(z_of(a, "cka"), z_of(b, "cka")) end, "cka(E1 | x, E2 | y)",
  "linear CKA (Kornblith et al. 2019) of two embeddings of the same rows: 1 for the same up to rotation and scale")
word("pca", function(x, k) return metrics.pca(z_of(x, "pca"), k) end, "pca(E | z, k)",
  "the rows on their k principal directions (N x k), the directions, the explained shares")
word("knn", function(E, o) return E:knn(o) end, "knn(E [, {k =, T =}])",
  "weighted kNN on the encoder's features: accuracy, predictions, per-class accuracy, confusion matrix")
word("linear_probe", function(E, o) return E:linear_probe(o) end, "linear_probe(E)", "the offline linear probe's test accuracy on the encoder's features")
word("neighbours", function(E, q, n) return E:neighbours(q, n) end, "neighbours(E, i | image [, n = 8])",
  "the n nearest rows by cosine similarity, with their labels and similarities")
word("losses", function(E, o) return E:losses(o) end, "losses(E)", "every regularizer's loss and named terms on the embeddings")

---------------------------------------------------------------- tables
-- the metric table of one run's test embeddings (n rows; views for LiDAR and alignment)
function M.table(run, o)
  o = o or {}
  local E = embedding.embed(run, "test", { n = o.n, views = o.views })
  local sz, sh = metrics.stats(E.z), metrics.stats(E.h)
  local spec = metrics.spectrum(E.z)
  local g = metrics.gaussianity(E.z)
  local t = {
    { "linear_probe", run.summary and run.summary.linear_probe },
    { "knn", run.summary and run.summary.knn },
    { "rankme_z", metrics.rankme(E.z) }, { "rankme_h", metrics.rankme(E.h) },
    { "dims_z", E.z:size(1) }, { "dims_h", E.h:size(1) },
    { "dims_90_z", spec.dims_90 }, { "dims_99_z", spec.dims_99 },
    { "alpha_req_z", metrics.alpha_req(E.z) },
    { "std_mean_z", sz.std_mean }, { "std_min_z", sz.std_min }, { "dead_dims_z", sz.dead_dims }, { "dead_dims_h", sh.dead_dims },
    { "gaussianity_w1_z", g.w1 }, { "kurtosis_z", g.kurtosis },
    { "uniformity_z", metrics.uniformity(E.z) },
  }
  if E.views then
    t[#t + 1] = { "lidar_z", metrics.lidar(E.views) }
    t[#t + 1] = { "alignment_z", metrics.alignment(E.views:select(0, 0), E.views:select(0, 1)) }
  end
  return t, E
end

local function cell(v)
  if v == nil then return "-" end
  if type(v) ~= "number" then return tostring(v) end
  if v % 1 == 0 and math.abs(v) < 1e9 then return string.format("%d", v) end
  return string.format("%.4g", v)
end

-- compare(a, b, ...): the metric table of several runs side by side, with the linear CKA of each
-- run's test embeddings against the first's
function M.compare(...)
  local runs = { ... }
  if #runs == 0 then util.error("compare: expected runs from load_run(dir)") end
  local cols, embs = {}, {}
  for i, r in ipairs(runs) do cols[i], embs[i] = M.table(r, { n = 2000 }) end
  local rows = { { "metric" } }
  for i, r in ipairs(runs) do rows[1][i + 1] = r.dir:match("([^/]+)$") or r.dir end
  for k, entry in ipairs(cols[1]) do
    local row = { entry[1] }
    for i = 1, #runs do row[i + 1] = cell(cols[i][k] and cols[i][k][2]) end
    rows[#rows + 1] = row
  end
  local row = { "cka_z_vs_first" }
  for i = 1, #runs do row[i + 1] = cell(metrics.cka(embs[1].z, embs[i].z)) end
  rows[#rows + 1] = row
  local widths = {}
  for _, r in ipairs(rows) do for j, c in ipairs(r) do widths[j] = math.max(widths[j] or 0, #c) end end
  for _, r in ipairs(rows) do
    local cells = {}
    for j, c in ipairs(r) do cells[j] = j == 1 and (c .. string.rep(" ", widths[j] - #c)) or (string.rep(" ", widths[j] - #c) .. c) end
    print(table.concat(cells, "  "))
  end
end
M.WORDS[#M.WORDS + 1] = { name = "compare", fn = M.compare, call = "compare(run1, run2, ...)",
  doc = "one table of every metric for several runs (test split, 2000 rows) and linear CKA against the first" }
doc.add(M.compare, M.WORDS[#M.WORDS].call, M.WORDS[#M.WORDS].doc, { group = "probe" })

---------------------------------------------------------------- pictures
word("plot", function(ys, o)
  o = o or {}
  if o.svg then
    return plot.svg({ { y = ys, x = o.xs, label = o.label, points = o.points } }, { path = o.svg, csv = o.csv,
      title = o.title, log_y = o.log_y, log_x = o.log_x, xlabel = o.xlabel, ylabel = o.ylabel })
  end
  print(plot.line(ys, o))
end, "plot(values [, {xs =, log_y =, title =, svg = FILE, csv = FILE}])",
  "a curve in the terminal (braille), or an SVG file (and its data as CSV) with svg = FILE")
word("hist", function(values, o) print(plot.hist(values, o)) end, "hist(values [, {bins = 40}])", "a histogram in the terminal")
word("plot_spectrum", function(x, o)
  o = o or {}
  local s = metrics.spectrum(z_of(x, "plot_spectrum"))
  if o.svg then
    return plot.svg({ { y = s.eigenvalues, label = "eigenvalue" } }, { path = o.svg, csv = o.csv, log_y = true,
      title = "covariance spectrum", xlabel = "rank", ylabel = "eigenvalue" })
  end
  print(plot.line(s.eigenvalues, { log_y = true, title = string.format("covariance spectrum (%d dims hold 90%%, %d hold 99%%)",
    s.dims_90, s.dims_99) }))
end, "plot_spectrum(E | z [, {svg = FILE}])", "the covariance eigenvalues on a log scale")
word("scatter_pca", function(E, path)
  local p = metrics.pca(z_of(E, "scatter_pca"), 2)
  local labels = is_embedding(E) and E.labels:to_list() or nil
  local xs, ys = p:select(1, 0):to_list(), p:select(1, 1):to_list()
  local series = {}
  if labels then
    local by = {}
    for i, l in ipairs(labels) do
      local s = by[l]
      if not s then
        s = { x = {}, y = {}, points = true, label = E.classes and E.classes[l + 1] or tostring(l) }
        by[l] = s
        series[#series + 1] = s
      end
      s.x[#s.x + 1], s.y[#s.y + 1] = xs[i], ys[i]
    end
    table.sort(series, function(a, b) return a.label < b.label end)
  else
    series[1] = { x = xs, y = ys, points = true }
  end
  path = path or "pca.svg"
  plot.svg(series, { path = path, csv = path:gsub("%.svg$", "") .. ".csv", title = "PCA of the embeddings", xlabel = "PC 1", ylabel = "PC 2" })
  print("wrote " .. path)
end, "scatter_pca(E [, FILE = \"pca.svg\"])", "the first two principal components as an SVG scatter, coloured by class (and a CSV)")

-- the pictures as methods too: E:scatter_pca(), E:plot_spectrum()
embedding.Embedding.scatter_pca = M.scatter_pca
embedding.Embedding.plot_spectrum = M.plot_spectrum

---------------------------------------------------------------- the globals of a session
function M.install(env)
  for _, w in ipairs(M.WORDS) do env[w.name] = w.fn end
end

---------------------------------------------------------------- `visreg probe`
local PROBE_USAGE = [[usage: visreg probe RUN_DIR [--json] [--n N] [--views V] [--recipe FILE] [--device D]
  the metric table of a trained run's test embeddings (RankMe, alpha-ReQ, Gaussianity, uniformity,
  dead dimensions, ...); --views V also gives LiDAR and alignment from V augmented views]]

function M.main(args)
  local cli = require "visreg.cli"
  local pos, o = cli.parse(args, { json = "flag", n = "value", views = "value", recipe = "value", device = "value" })
  if not pos then io.stderr:write("visreg probe: ", o, "\n", PROBE_USAGE, "\n"); return 2 end
  if o.help then print(PROBE_USAGE); return 0 end
  if #pos ~= 1 then io.stderr:write("visreg probe: expected one run folder\n", PROBE_USAGE, "\n"); return 2 end
  return cli.run_protected(function()
    local run = embedding.load_run(pos[1], { recipe = o.recipe, device = o.device })
    local t = M.table(run, { n = tonumber(o.n), views = tonumber(o.views) })
    if o.json then
      local obj = { run = run.dir }
      for _, e in ipairs(t) do obj[e[1]] = e[2] end
      print(util.json_encode(obj, "  "))
    else
      print(tostring(run))
      for _, e in ipairs(t) do print(string.format("  %-18s %s", e[1], cell(e[2]))) end
    end
    return 0
  end)
end

return M
