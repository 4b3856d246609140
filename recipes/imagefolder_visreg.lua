-- VISReg on your own images: a folder of class folders (root/CLASS/*.jpg|png, or root/train/ and
-- root/val/), decoded once at 64 px into a packed cache (under $VISREG_CACHE or ~/.cache/visreg;
-- see README "Your own images"), then trained like the built-in datasets. ResNet-18 with the CIFAR
-- stem, 3 channels, two 64 px views with ImageNet-style augmentations. Point it at a folder:
--   bin/visreg train recipes/imagefolder_visreg.lua --set data.root=/data/imagenette --out runs/imgs
-- Without val/ or test/, a stratified tenth of every class is held out for the probes
-- (data.holdout); a long-tailed variant: --set data.long_tail=100. On a CPU, try
-- --set precision=f32 --set memory_format=contiguous --set model.width=32.
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment

local mean, std = { 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 }
return vr.recipe {
  seed = 0, epochs = 100, batch = 256, device = "auto", precision = "bf16", cudnn_benchmark = true,
  memory_format = "channels_last",
  data = vr.data.image_folder { root = false, size = 64 },
  views = { global = { n = 2, size = 64, pipeline = {
    aug.random_resized_crop { scale = { 0.2, 1 } }, aug.hflip { p = 0.5 },
    aug.jitter { brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1, p = 0.8 },
    aug.grayscale { p = 0.2 }, aug.blur { sigma = { 0.1, 2 }, p = 0.2 }, aug.solarize { p = 0.1 },
    aug.normalize { mean = mean, std = std } } } },
  model = { width = 64, projector = { 2048, 2048, 256 },
    build = function(m)
      local enc = nn.resnet18 { in_channels = 3, stem = "cifar", width = m.width }
      return enc, nn.mlp { enc.out_dim, unpack(m.projector) }
    end },
  loss = vr.loss.visreg { lambda = 0.6, slices = 1024 },
  optim = vr.optim.adamw { lr = 1e-3, weight_decay = 0.05, no_decay = { "bias", "norm" }, clip_grad_norm = 1 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 5, final_ratio = 1e-3 } },
  eval = { online_probe = true, linear_probe = true, knn = { k = 20, T = 0.07 } },
  loader = { workers = 8, prefetch = 4 },
  log = { every = 50 },
}
