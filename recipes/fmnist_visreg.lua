-- The default recipe (`make run`): VISReg on Fashion-MNIST with a small CNN, sized for a 2-core
-- CPU. Measured on 2 cores (README, "Measured results"; history in bench/train_cpu.md): linear
-- probe 88.13%, kNN 87.05%, about 3 min 40 s of training for the 4 epochs. Try:
--   bin/visreg train recipes/fmnist_visreg.lua --set loss.lambda=0.7 --out runs/a
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment

return vr.recipe {
  seed = 0, epochs = 4, batch = 256, device = "auto",
  data = vr.data.fashion_mnist {},
  views = { global = { n = 2, size = 28, pipeline = {
    aug.random_resized_crop { scale = { 0.3, 1 } }, aug.hflip { p = 0.5 },
    aug.jitter { brightness = 0.4, contrast = 0.4, p = 0.8 },
    aug.solarize { p = 0.2 }, aug.normalize { mean = 0.286, std = 0.353 } } } },
  -- the model's numbers are data (`--set model.width=32`, sweepable); build reads them
  model = { width = 16, pool = 2, projector = { 512, 512, 128 },
    build = function(m)
      local enc = nn.smallcnn { in_channels = 1, width = m.width, pool = m.pool }
      return enc, nn.mlp { enc.out_dim, unpack(m.projector) } -- batch norm and ReLU between layers
    end },
  loss = vr.loss.visreg { lambda = 0.6, slices = 1024, weights = { scale = 1, shape = 1, center = 1 } },
  optim = vr.optim.adamw { lr = 2e-3, weight_decay = 0.05, no_decay = { "bias", "norm" }, clip_grad_norm = 1 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 1, final_ratio = 1e-3 } },
  eval = { online_probe = true, linear_probe = true, knn = { k = 20, T = 0.07 } },
  log = { every = 20 },
}
