-- The paper's small-scale training experiments (README, "The paper at small scale"): one recipe,
-- the method chosen by loss.kind (visreg, sigreg, swd, vicreg) with its lambda and, for VISReg,
-- its term weights; the sweeps in this folder set them (slices.yaml, dims.yaml, long_tail.yaml,
-- low_rank.yaml, ablations.yaml). Sized for a loaded 2-core CPU: a few thousand training images,
-- one or two epochs, the small CNN (width 8), batch 128. data.reduce picks a balanced or long-tailed
-- training set (visreg.data_reduce) and can project the images on their top principal components.
-- One trial alone:
--   bin/visreg train recipes/paper/fmnist_methods.lua --set loss.kind=swd --out runs/swd
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment

return vr.recipe {
  seed = 0, epochs = 1, batch = 128, device = "auto",
  -- per_class: training images per class before the long tail (0: all); long_tail: imbalance
  -- ratio (0: balanced); low_rank: principal components kept (0: the images as they are)
  data = vr.data.fashion_mnist { test_subset = 2000,
    reduce = { per_class = 300, long_tail = 0, low_rank = 0, seed = 0 } },
  views = { global = { n = 2, size = 28, pipeline = {
    aug.random_resized_crop { scale = { 0.3, 1 } }, aug.hflip { p = 0.5 },
    aug.jitter { brightness = 0.4, contrast = 0.4, p = 0.8 },
    aug.solarize { p = 0.2 }, aug.normalize { mean = 0.286, std = 0.353 } } } },
  -- dim: the projector's output D (the embedding the regularizer sees)
  model = { width = 8, pool = 2, hidden = 256, dim = 128,
    build = function(m)
      local enc = nn.smallcnn { in_channels = 1, width = m.width, pool = m.pool }
      return enc, nn.mlp { enc.out_dim, m.hidden, m.hidden, m.dim }
    end },
  -- the method: kind visreg (weights 1, 1, 1; VISReg* 0.5, 2, 0.5), sigreg (lambda 0.02), swd,
  -- vicreg (the official two-view loss, lambda 1); unused fields keep each loss's defaults
  loss = vr.loss.visreg { lambda = 0.6, slices = 256, weights = { scale = 1, shape = 1, center = 1 } },
  optim = vr.optim.adamw { lr = 2e-3, weight_decay = 0.05, no_decay = { "bias", "norm" }, clip_grad_norm = 1 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 0, final_ratio = 1e-3 } },
  eval = { online_probe = false, linear_probe = true, knn = false, probe_iters = 100, shot_groups = true },
  log = { every = 10 },
  checkpoint = { every = 0 },
}
