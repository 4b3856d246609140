-- Fashion-MNIST with SIGReg (LeJEPA's Epps-Pulley test on random slices); its loss grows with the batch, so lambda is small.
-- Everything else as recipes/fmnist_visreg.lua, for comparison.
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment

return vr.recipe {
  seed = 0, epochs = 4, batch = 256, device = "auto",
  data = vr.data.fashion_mnist {},
  views = { global = { n = 2, size = 28, pipeline = {
    aug.random_resized_crop { scale = { 0.3, 1 } }, aug.hflip { p = 0.5 },
    aug.jitter { brightness = 0.4, contrast = 0.4, p = 0.8 },
    aug.solarize { p = 0.2 }, aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = function()
    local enc = nn.smallcnn { in_channels = 1, width = 16, pool = 2 }
    local proj = nn.mlp { enc.out_dim, 512, 512, 128, norm = "batch", act = "relu" }
    return enc, proj
  end,
  loss = vr.loss.sigreg { lambda = 0.02, slices = 1024, knots = 17, t_max = 3 },
  optim = vr.optim.adamw { lr = 2e-3, weight_decay = 0.05, no_decay = { "bias", "norm" }, clip_grad_norm = 1 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 1, final_ratio = 1e-3 } },
  eval = { online_probe = true, linear_probe = true, knn = { k = 20, T = 0.07 } },
  log = { every = 20 },
}
