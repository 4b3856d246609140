-- The Fashion-MNIST base the recipes/fmnist_*.lua files extend (vr.recipe.extend): a small CNN and
-- an MLP projector, two 28 px views, AdamW with a warm-up and cosine decay, the online and offline
-- probes. It has no loss: each recipe that extends it adds its own.
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment

return {
  seed = 0, epochs = 5, batch = 256, device = "auto",
  data = vr.data.fashion_mnist {},
  views = { global = { n = 2, size = 28, pipeline = {
    aug.random_resized_crop { scale = { 0.3, 1 } }, aug.hflip { p = 0.5 },
    aug.jitter { brightness = 0.4, contrast = 0.4, p = 0.8 },
    aug.solarize { p = 0.2 }, aug.normalize { mean = 0.286, std = 0.353 } } } },
  -- the model's numbers are data (`--set model.width=32`, sweepable); build reads them. Pooling
  -- the features to 4 x 4 and 5 epochs: recipes/sweeps/default_recipe.yaml's choice
  model = { width = 16, pool = 4, projector = { 512, 512, 128 },
    build = function(m)
      local enc = nn.smallcnn { in_channels = 1, width = m.width, pool = m.pool }
      return enc, nn.mlp { enc.out_dim, unpack(m.projector) } -- batch norm and ReLU between layers
    end },
  optim = vr.optim.adamw { lr = 2e-3, weight_decay = 0.05, no_decay = { "bias", "norm" }, clip_grad_norm = 1 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 1, final_ratio = 1e-3 } },
  eval = { online_probe = true, linear_probe = true, knn = { k = 20, T = 0.07 } },
  log = { every = 20 },
}
