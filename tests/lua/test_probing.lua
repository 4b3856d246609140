-- the probing words on a real, tiny trained run: load_run (no globals), embed (shapes, cache,
-- augmented views), the metric words on E and on tensors, kNN with predictions and confusion
-- matrix against the run's own summary, the linear probe, neighbours, every regularizer's terms,
-- compare, the pictures, and `visreg probe --json`
local tap = require "tap"
local vr = require "visreg"
local util = vr.util
local P = require "visreg.probing"
local metrics = vr.metrics
local q = util.shell_quote

if not tap.can_train("probing") then os.exit(tap.done(), true) end
local base = tap.scratch("probing")
local dir = base .. "/run"
local rc, out = tap.sh(q(VISREG_EXE) .. " train recipes/fmnist_visreg.lua --set epochs=1 --set data.subset=1024" ..
  " --set data.test_subset=300 --set batch=128 --set model.width=8 --set model.pool=2 --out " .. q(dir) .. " --quiet")
if not tap.ok(rc == 0, "a tiny run trains", out) then os.exit(tap.done(), true) end

local run = P.load_run(dir)
tap.ok(run.enc and run.proj and run.ds.test and run.summary.linear_probe and #run.history == 1 and rawget(_G, "enc") == nil,
  "load_run gives the model, data, summary and history, and sets no global")
tap.eq(tostring(run):match("^run [^:]+: (%S+),"), "fmnist_visreg", "the run is named after its recipe")
local E = P.embed(run, "test")
tap.ok(E.z:size(0) == 300 and E.z:size(1) == 128 and E.h:size(1) == 4 * 8 * 2 * 2 and E.labels:size(0) == 300,
  "embed: projector outputs, encoder features and labels of the test split", tostring(E))
tap.ok(P.embed(run, "test") == E, "embeddings are cached per run and split")
tap.eq(E.classes[8], "Sneaker", "class names")
P.current = run
tap.ok(P.embed(run.ds.test) == E, "embed(ds.test) uses the current run")
local E2 = P.embed(run, "test", { views = 2, n = 100 })
tap.ok(E2.views:size(0) == 2 and E2.views:size(1) == 100 and E2.hviews:size(2) == 128, "embed with augmented views")

tap.eq(P.rankme(E), metrics.rankme(E.z), "a word on E is the metric of its projector outputs")
tap.eq(P.rankme(E.h), E:rankme("h"), "a word on a tensor, and E:rankme(\"h\") for the encoder")
tap.ok(P.rankme(E) > 1 and P.rankme(E) <= 128, "RankMe in range", P.rankme(E))
local li = P.lidar(E2)
tap.ok(li > 1 and li <= 128 and P.alignment(E2) > 0, "LiDAR and alignment from the views", li)
tap.raises(function() P.lidar(E) end, "views = 8", "LiDAR without views says how to get them")

local k = P.knn(E)
tap.ok(math.abs(k.accuracy - run.summary.knn) <= 1 / 300 + 1e-12, "kNN accuracy agrees with the run's summary",
  string.format("%g vs %g", k.accuracy, run.summary.knn))
local total, diag, right = 0, 0, 0
for c = 1, 10 do
  for c2 = 1, 10 do total = total + k.confusion[c][c2] end
  diag = diag + k.confusion[c][c]
end
local p, y = k.predictions:to_list(), E.labels:to_list()
for i = 1, #y do if p[i] == y[i] then right = right + 1 end end
tap.ok(total == 300 and diag == right and math.abs(right / 300 - k.accuracy) < 1e-12,
  "the confusion matrix counts every prediction, its diagonal the correct ones")
local lp = P.linear_probe(E)
tap.ok(math.abs(lp - run.summary.linear_probe) <= 2 / 300 + 1e-12, "the linear probe agrees with the run's summary",
  string.format("%g vs %g", lp, run.summary.linear_probe))
local nb = P.neighbours(E, 0, 3)
tap.ok(#nb == 3 and nb[1].index ~= 0 and nb[1].similarity >= nb[2].similarity and nb[1].class, "neighbours of a row")
local L = P.losses(E2)
tap.ok(L.visreg.shape and L.vicreg.inv and L.barlow.loss and L.sigreg.loss and L.swd.loss, "every regularizer's terms, named")
local proj = P.pca(E, 2)
tap.ok(proj:size(0) == 300 and proj:size(1) == 2, "pca to 2 dims")
local svg = base .. "/pca.svg"
P.scatter_pca(E, svg)
local text = util.read_file(svg) or ""
tap.ok(select(2, text:gsub("<circle", "")) == 300 and text:find("Sneaker", 1, true) and util.file_exists(base .. "/pca.csv"),
  "scatter_pca writes an SVG point per row, classes in the legend, and the CSV")
local printed = {}
local old_print = print
print = function(s) printed[#printed + 1] = s end
P.compare(run, run)
print = old_print
tap.ok(table.concat(printed, "\n"):find("cka_z_vs_first%s+1%s+1"), "compare: one table, CKA 1 against itself",
  table.concat(printed, "\n"))

rc, out = tap.sh(q(VISREG_EXE) .. " probe " .. q(dir) .. " --json")
local ok, j = pcall(util.json_decode, out)
tap.ok(rc == 0 and ok and math.abs(j.rankme_z - P.rankme(E)) < 1e-9 and j.linear_probe == run.summary.linear_probe,
  "visreg probe --json prints the metric table", out)
rc, out = tap.sh(q(VISREG_EXE) .. " probe " .. q(base .. "/none"))
tap.ok(rc == 1 and out:find("not a folder", 1, true), "probe names a missing run folder", out)
tap.raises(function() P.load_run(base) end, "no checkpoint.safetensors", "load_run of a folder without a checkpoint")

os.execute("rm -rf " .. q(base))
os.exit(tap.done(), true)
