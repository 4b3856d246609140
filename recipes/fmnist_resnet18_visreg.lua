-- The GPU recipe: VISReg on Fashion-MNIST with ResNet-18 (CIFAR stem, 1 channel), 2 views x 256,
-- 20 epochs, bf16 autocast, channels-last activations and cuDNN's measured algorithms, as the PyTorch reference
-- (shared/peers/fmnist_ref.py) trains it. device auto: CUDA when a GPU is present (on the CPU, use
-- --set precision=f32 --set memory_format=contiguous: bf16 is emulated there, and the CPU's
-- channels-last convolution goes through NCHW copies).
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment

return vr.recipe {
  seed = 0, epochs = 20, batch = 256, device = "auto", precision = "bf16", cudnn_benchmark = true,
  memory_format = "channels_last",
  data = vr.data.fashion_mnist {},
  views = { global = { n = 2, size = 28, pipeline = {
    aug.random_resized_crop { scale = { 0.3, 1 } }, aug.hflip { p = 0.5 },
    aug.jitter { brightness = 0.4, contrast = 0.4, p = 0.8 },
    aug.solarize { p = 0.2 }, aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = function()
    local enc = nn.resnet18 { in_channels = 1, stem = "cifar" }
    local proj = nn.mlp { enc.out_dim, 2048, 2048, 128, norm = "batch", act = "relu" }
    return enc, proj
  end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 1024 },
  optim = vr.optim.adamw { lr = 1e-3, weight_decay = 0.05, no_decay = { "bias", "norm" }, clip_grad_norm = 1 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 2, final_ratio = 1e-3 } },
  eval = { online_probe = true, linear_probe = true, knn = { k = 20, T = 0.07 } },
  loader = { workers = 8, prefetch = 4 },
  log = { every = 50 },
}
