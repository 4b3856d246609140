-- bench/dist_comm.lua: the cost of data-parallel training's communication.
--   mpirun --oversubscribe -np 2 bin/visreg run bench/dist_comm.lua   (measured, CPU ranks, MPI)
--   bin/visreg run bench/dist_comm.lua                                  (the estimate alone)
-- Measured: the gradient all-reduce (vr_dist_all_reduce_sum, 32 MiB buckets) for the parameter
-- counts of the tiny test recipe and of the default GPU recipe (ResNet-18 + projector + probe),
-- and the embeddings' all-gather (V x B/N x D per rank) that the objective on the global batch
-- needs, each the median of several calls. Estimated: bytes each GPU sends per step with 8 GPUs
-- (ring all-reduce: 2 (N-1)/N x S; all-gather: (N-1)/N x the gathered size) and the time at
-- NVLink and InfiniBand bandwidths, for the default GPU recipe and a ViT-B/16 recipe.
local vr = require "visreg"
local nn = vr.nn
local tensor = require "visreg.tensor"
local dist = require "visreg.dist"
dist.init()
local R, N = dist.rank(), dist.size()
local function say(...) if R == 0 then print(string.format(...)) end end

local function count(enc, proj, classes)
  return enc:num_parameters() + proj:num_parameters() + enc.out_dim * classes + classes
end
local function resnet_recipe()
  local enc = nn.resnet18 { in_channels = 1, stem = "cifar" }
  return count(enc, nn.mlp { enc.out_dim, 2048, 2048, 128, norm = "batch" }, 10)
end
local function vitb_recipe()
  local enc = nn.vit { image_size = 224, patch = 16, in_channels = 3, width = 768, depth = 12, heads = 12 }
  return count(enc, nn.mlp { enc.out_dim, 2048, 2048, 256, norm = "batch" }, 1000)
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) / 2] or 0.5 * (xs[n / 2] + xs[n / 2 + 1])
end
local function timed(reps, fn)
  local ts = {}
  fn() -- warm-up
  for i = 1, reps do
    dist.barrier()
    local t0 = vr.now()
    fn()
    ts[i] = vr.now() - t0
  end
  return median(ts)
end

local resnet_n = resnet_recipe()
local vit_n = vitb_recipe()
if N > 1 then
  say("| what (f32) | MB per rank | median ms | GB/s (algorithm: MB / s) |")
  say("|---|---|---|---|")
  for _, c in ipairs {
    { "gradients, tiny test recipe", 25120 + 1584 + 330, 50 },
    { "gradients, 1 MB", 262144, 30 },
    { "gradients, 16 MB", 4194304, 10 },
    { "gradients, default GPU recipe (ResNet-18)", resnet_n, 5 },
  } do
    local grads = { tensor.ones({ c[2] }, { dtype = "f32" }) }
    local s = timed(c[3], function() dist.all_reduce_sum(grads) end)
    local mb = c[2] * 4 / 1e6
    say("| all-reduce %s (%d values) | %.2f | %.3f | %.2f |", c[1], c[2], mb, s * 1e3, mb / 1e3 / s)
  end
  for _, c in ipairs { { "embeddings 2 x 128 x 128 (GPU recipe, batch 256 on 2 ranks)", { 2, 128, 128 } },
    { "embeddings 2 x 512 x 256", { 2, 512, 256 } } } do
    local z = tensor.ones(c[2], { dtype = "f32" })
    local s = timed(30, function() dist.all_gather(z, 1) end)
    local mb = c[2][1] * c[2][2] * c[2][3] * 4 / 1e6
    say("| all-gather %s | %.2f | %.3f | %.2f |", c[1], mb, s * 1e3, mb / 1e3 / s)
  end
end

-- the estimate: 8 GPUs, one rank each
local G = 8
local links = { { "NVLink 4 (H100 SXM, ~400 GB/s bus bandwidth)", 400e9 },
  { "InfiniBand NDR (400 Gb/s, one NIC a GPU: 50 GB/s)", 50e9 },
  { "InfiniBand HDR (200 Gb/s: 25 GB/s)", 25e9 } }
say("")
say("| recipe (8 GPUs) | parameters | all-reduce MB sent per GPU | all-gather MB per GPU | %s |",
  table.concat((function() local t = {} for i, l in ipairs(links) do t[i] = l[1] .. ", ms" end return t end)(), " | "))
say("|---|---|---|---|%s", string.rep("---|", #links))
for _, c in ipairs {
  { "default GPU recipe: ResNet-18, 2 views, batch 256 x 8, D 128", resnet_n, 2 * 256 * 8 * 128 },
  { "ViT-B/16, 2 views, batch 128 x 8, D 256", vit_n, 2 * 128 * 8 * 256 },
} do
  local ar = 2 * (G - 1) / G * c[2] * 4
  local ag = (G - 1) / G * c[3] * 4
  local cells = {}
  for i, l in ipairs(links) do cells[i] = string.format("%.2f", (ar + ag) / l[2] * 1e3) end
  say("| %s | %.1f M | %.1f | %.2f | %s |", c[1], c[2] / 1e6, ar / 1e6, ag / 1e6, table.concat(cells, " | "))
end
dist.finalize()
