-- visreg.embedding: trained runs and their embeddings, for probing.
--
--   run = load_run(dir)          a run folder as a handle: recipe, trainer, enc, proj, ds, summary,
--                                history (metrics.jsonl's epoch lines); sets no globals. The model
--                                is rebuilt from the folder's recipe.lua (never from code stored in
--                                the checkpoint), which is only compared with the checkpoint's copy
--   E = embed(run, "test", {n =, views =, batch =})
--                                the split through the eval pipeline without gradients: E.h (encoder
--                                features, N x De), E.z (projector outputs, N x Dp), E.labels,
--                                E.classes; views = V adds E.views (V x N x Dp) and E.hviews, made
--                                with the recipe's training augmentations. Cached per run, split,
--                                n and views.
--
-- E's methods are the metrics of visreg.metrics on E.z (E:rankme(), E:spectrum(), ...; E:rankme("h")
-- for the encoder's features) and the probes, which use the run's training split: E:knn(),
-- E:linear_probe(), E:neighbours(i), E:pca(k), E:losses() (every regularizer's terms).
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local augment = require "visreg.augment"
local probe = require "visreg.probe"
local metrics = require "visreg.metrics"
local lossm = require "visreg.loss"
local C = core.C

local M = {}

-- class names of the datasets the toolkit reads (others are numbered)
local CLASS_NAMES = {
  fashion_mnist = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" },
  cifar10 = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" },
}

M.class_names = CLASS_NAMES

local read_json = util.read_json

---------------------------------------------------------------- runs
local Run = {}
Run.__index = Run

function Run:__tostring()
  return string.format("run %s: %s, epoch %d%s", self.dir, self.recipe.name or "?", self.trainer.state.epoch,
    self.summary and self.summary.linear_probe and string.format(", linear probe %.2f%%", 100 * self.summary.linear_probe) or "")
end

-- load_run(dir, o): o.recipe (a recipe file instead of the folder's recipe.lua), o.checkpoint (a
-- checkpoint file instead of dir/checkpoint.safetensors), o.overrides (--set values applied after
-- run.json's), o.device. Only data is read from the checkpoint: its tensors are checked against
-- the model the recipe builds, and its stored recipe is compared with the one used (run.warning).
function M.load_run(dir, o)
  o = o or {}
  if type(dir) ~= "string" then util.error("load_run: expected a run folder, got %s", type(dir)) end
  dir = dir:gsub("(.)/+$", "%1")
  if not util.is_dir(dir) then util.error("load_run: %s is not a folder", dir) end
  local ckpt = o.checkpoint or (dir .. "/checkpoint.safetensors")
  if not util.file_exists(ckpt) then
    if o.checkpoint then util.error("load_run: no checkpoint %s", ckpt) end
    util.error("load_run: %s has no checkpoint.safetensors", dir)
  end
  local recipe_path = o.recipe or (dir .. "/recipe.lua")
  if not util.file_exists(recipe_path) then
    if o.recipe then util.error("load_run: cannot open the recipe %s", o.recipe) end
    util.error("load_run: %s has no recipe.lua; give the recipe the run was trained with: load_run(dir, {recipe = FILE}) " ..
      "or visreg eval CHECKPOINT --recipe FILE (the recipe stored in a checkpoint is never run)", dir)
  end
  local recipe = require "visreg.recipe"
  local trainer = require "visreg.trainer"
  local run = read_json(dir .. "/run.json") or {}
  local overrides = {}
  if type(run.overrides) == "table" then
    for _, s in ipairs(run.overrides) do
      if type(s) == "string" then overrides[#overrides + 1] = s end
    end
  end
  for _, s in ipairs(o.overrides or {}) do overrides[#overrides + 1] = s end
  local r, source = recipe.load(recipe_path, overrides)
  local t = trainer.setup(r, { device = o.device, quiet = true })
  local meta = trainer.restore(t, ckpt)
  t.enc:eval()
  t.proj:eval()
  local self = setmetatable({ dir = dir, checkpoint = ckpt, recipe_path = recipe_path, recipe = r, trainer = t,
    enc = t.enc, proj = t.proj, ds = t.ds, summary = read_json(dir .. "/summary.json"), history = {}, cache = {} }, Run)
  if meta.recipe_source and meta.recipe_source ~= "" and meta.recipe_source ~= source then
    self.warning = string.format("%s differs from the recipe saved in %s (the model is built from %s)", recipe_path,
      ckpt, recipe_path)
  end
  local f = io.open(dir .. "/metrics.jsonl", "rb")
  if f then
    for line in f:lines() do
      local ok, e = pcall(util.json_decode, line)
      if ok and type(e) == "table" and e.type == "epoch" then self.history[e.epoch + 1] = e end
    end
    f:close()
  end
  self.classes = CLASS_NAMES[r.data.kind]
  -- the recipe file in the folder is recipe.lua: the run's own name is the one it trained under
  if r.name == "recipe" and self.summary and self.summary.recipe then r.name = self.summary.recipe end
  return self
end

---------------------------------------------------------------- embeddings
local E = {}
E.__index = E
M.Embedding = E

function E:__tostring()
  return string.format("embeddings of %s's %s split: %d x %d projector outputs (z), %d x %d encoder features (h)%s",
    self.run and self.run.dir or "?", self.split, self.z:size(0), self.z:size(1), self.h:size(0), self.h:size(1),
    self.views and string.format(", %d views (views, hviews)", self.views:size(0)) or "")
end

-- runs images (u8 N x C x H x W) through a pipeline, the encoder and the projector, batch by batch
local function forward(run, images, pipeline, o, view)
  local n = images:size(0)
  local bs = o.batch or 500
  local hs, zs = {}, {}
  local r = run.recipe
  local device = run.trainer.device
  tensor.no_grad(function()
    for i = 0, n - 1, bs do
      core.check_interrupt() -- Ctrl-C in the REPL stops here, between batches
      local m = math.min(bs, n - i)
      local x = augment.apply(pipeline, images:narrow(0, i, m), { size = o.size, seed = r.seed, epoch = 0, view = view,
        sample = i })
      if device ~= "cpu" then x = x:to(device) end
      local h = run.enc(x)
      local z = run.proj(h)
      hs[#hs + 1] = h:detach():to("cpu"):to("f32")
      zs[#zs + 1] = z:detach():to("cpu"):to("f32")
    end
  end)
  return tensor.cat(hs, 0), tensor.cat(zs, 0)
end

function M.embed(run, split, o)
  if type(split) == "table" then o, split = split, nil end
  o = o or {}
  split = split or "test"
  if getmetatable(run) ~= Run then util.error("embed: expected a run from load_run(dir), got %s", type(run)) end
  local ds = run.ds[split]
  if not ds then util.error("embed: unknown split '%s' (train or test)", tostring(split)) end
  local key = string.format("%s/%s/%s", split, tostring(o.n or "all"), tostring(o.views or 0))
  if run.cache[key] then return run.cache[key] end
  local n = math.min(o.n or ds:count(), ds:count())
  local images = ds:images():narrow(0, 0, n)
  local g = run.recipe.views.global
  local size = g.size
  if type(size) == "number" and size == ds:height() and size == ds:width() then size = nil end
  local self = setmetatable({ run = run, split = split, classes = run.classes or ds.classes }, E)
  self.h, self.z = forward(run, images, augment.eval_pipeline(g.pipeline, size), { batch = o.batch, size = size })
  self.labels = ds:labels():narrow(0, 0, n)
  if o.views and o.views > 0 then
    local pl = augment.build(g.pipeline)
    local hv, zv = {}, {}
    for v = 0, o.views - 1 do
      hv[#hv + 1], zv[#zv + 1] = forward(run, images, pl, { batch = o.batch, size = g.size or nil }, v)
    end
    self.hviews, self.views = tensor.stack(hv, 0), tensor.stack(zv, 0)
  end
  run.cache[key] = self
  return self
end

---------------------------------------------------------------- metrics on E
-- which: "z" (the projector's outputs, default) or "h" (the encoder's features)
local function pick(self, which)
  local x = self[which or "z"]
  if not tensor.is_tensor(x) then util.error("expected \"z\" or \"h\", got %s", tostring(which)) end
  return x
end
for _, name in ipairs { "stats", "spectrum", "rankme", "alpha_req", "gaussianity", "uniformity" } do
  E[name] = function(self, which, ...) return metrics[name](pick(self, which), ...) end
end
function E:pca(k, which) return metrics.pca(pick(self, which), k) end
function E:lidar(o)
  if not self.views then util.error("lidar needs augmented views: embed(run, split, {views = 8})") end
  return metrics.lidar(self.views, o)
end
-- alignment of the first two augmented views
function E:alignment()
  if not self.views then util.error("alignment needs augmented views: embed(run, split, {views = 2})") end
  return metrics.alignment(self.views:select(0, 0), self.views:select(0, 1))
end

-- the training split's embeddings of the same run (what the probes fit on)
local function train_side(self)
  if self.split == "train" then return self end
  return M.embed(self.run, "train")
end

-- kNN on the encoder's features (the recipe's k and T): accuracy, predictions, per-class accuracy
-- and the confusion matrix (rows: true class, columns: predicted)
function E:knn(o)
  o = o or {}
  local ev = self.run.recipe.eval
  local kk = type(ev.knn) == "table" and ev.knn or {}
  local tr = train_side(self)
  local nc = math.max(self.run.trainer.num_classes, 1)
  local predp, accp = core.ffi.new("vr_tensor *[1]"), core.ffi.new("double[1]")
  core.check(C.vr_knn_classify(tr.h, tr.labels, self.h, self.labels, nc, o.k or kk.k or 20, o.T or kk.T or 0.07, predp, accp))
  local pred = tensor.wrap(predp[0])
  local confusion, per_class = probe.confusion(pred, self.labels, nc)
  return { accuracy = accp[0], predictions = pred, per_class = per_class, confusion = confusion, classes = self.classes }
end

function E:linear_probe(o)
  o = o or {}
  local ev = self.run.recipe.eval
  local tr = train_side(self)
  return probe.linear_probe(tr.h, tr.labels, self.h, self.labels, { num_classes = self.run.trainer.num_classes,
    l2 = o.l2 or ev.probe_l2, max_iter = o.iters or ev.probe_iters })
end

-- the n nearest rows (cosine) to row i of this split, or to an image (C x H x W u8 or f32), with
-- their labels and similarities
function E:neighbours(q, n, which)
  n = n or 8
  local x = pick(self, which)
  local v
  if type(q) == "number" then
    v = x:select(0, q)
  else
    local g = self.run.recipe.views.global
    local img = q:dim() == 3 and q:unsqueeze(0) or q
    local h, z = forward(self.run, img, augment.eval_pipeline(g.pipeline, nil), {})
    v = ((which or "z") == "z" and z or h):select(0, 0)
  end
  local xn = x / (x:norm(2, 1, true) + 1e-12)
  local sim = xn:matmul((v / (v:norm() + 1e-12)):unsqueeze(1)):squeeze(1)
  local k = math.min(n + (type(q) == "number" and 1 or 0), x:size(0))
  local vals, idx = sim:topk(k)
  local out = {}
  local vl, il = vals:to_list(), idx:to_list()
  for j = 1, k do
    if il[j] ~= q then
      local label = self.labels:get(il[j])
      out[#out + 1] = { index = il[j], label = label, class = self.classes and self.classes[label + 1], similarity = vl[j] }
    end
    if #out == n then break end
  end
  return out
end

-- every regularizer's loss and terms on these embeddings (the views when there are any, else
-- the projector outputs as one view: the regularizers' own terms, no invariance)
function E:losses(o)
  o = o or {}
  local z = self.views or self.z:unsqueeze(0)
  local out = {}
  local function put(name, loss, terms)
    local row = { loss = loss:item() }
    if terms then
      local names = { visreg = { "center", "scale", "shape" }, vicreg = { "inv", "var", "cov" }, vicreg_pooled = { "var", "cov" } }
      local tl = terms:to_list()
      for i, nm in ipairs(names[name] or {}) do row[nm] = tl[i] end
    end
    out[name] = row
  end
  local slices = o.slices or 1024
  tensor.no_grad(function()
    put("visreg", lossm.visreg_reg(z, { slices = slices, seed = o.seed }))
    put("sigreg", lossm.sigreg_reg(z, { slices = slices, seed = o.seed }))
    put("swd", lossm.swd_reg(z, { slices = slices, seed = o.seed }))
    put("vicreg_pooled", lossm.vicreg_pooled_reg(z))
    if z:size(0) >= 2 then -- the two-view methods
      put("vicreg", lossm.vicreg_reg(z))
      put("barlow", lossm.barlow_reg(z))
    end
  end)
  return out
end

M.Run = Run
return M
