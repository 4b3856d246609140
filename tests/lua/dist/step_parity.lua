-- Run by tests/lua/test_dist.lua under mpirun: one training step on 2 ranks x B/2 against one
-- process x B (computed on every rank without collectives), in f64, for every regularizer and both
-- slice modes: the loss, every gradient after the average, every parameter after AdamW's step.
-- Prints one "ok"/"not ok" line a check (rank-prefixed); the launcher counts them.
local vr = require "visreg"
local nn = vr.nn
local lossm = require "visreg.loss"
local optim = require "visreg.optim"
local random = require "visreg.random"
local tensor = require "visreg.tensor"
local dist = require "visreg.dist"
local tdist = require "visreg.trainer_dist"

dist.init()
local R, N = dist.rank(), dist.size()
local V, B, F, D = 3, 16, 6, 8
local b = B / N
local TOL = 1e-9

local function report(ok, what, why)
  print(string.format("%s - rank %d: %s%s", ok and "ok" or "not ok", R, what, ok and "" or (": " .. tostring(why))))
end

-- a deterministic global input V x B x F
local x = tensor.zeros({ V, B, F }, { dtype = "f64" })
for v = 0, V - 1 do
  for i = 0, B - 1 do
    for f = 0, F - 1 do x:set(v, i, f, math.sin(0.3 + 1.1 * v + 0.7 * i + 0.37 * f + 0.013 * i * f)) end
  end
end

local function model()
  random.manual_seed(7, 0)
  return nn.mlp { F, 12, D, norm = false, dtype = "f64" }
end

local function forward(m, xs) -- xs: V x n x F -> V x n x D
  local nv, n = xs:size(0), xs:size(1)
  return m(xs:reshape(nv * n, F)):view(nv, n, D)
end

local function flat(t)
  local out, c = {}, t:contiguous():view(-1)
  for i = 0, c:numel() - 1 do out[#out + 1] = c:get(i) end
  return out
end

-- the largest difference relative to max(floor, |reference|)
local function max_rel(a, bb, floor)
  local m = 0
  for i = 1, #a do m = math.max(m, math.abs(a[i] - bb[i]) / math.max(floor, math.abs(bb[i]))) end
  return m
end

-- one process's step from its loss: the gradients (flat lists), then AdamW's step
local function one_step(opt, m, loss)
  opt:zero_grad()
  loss:backward()
  local g = {}
  for _, e in ipairs(m:named_parameters()) do g[#g + 1] = flat(e[2]:grad()) end
  opt:step()
  return g
end

-- the ranks' step on this rank's rows of xv: the loss, and the largest difference of the averaged
-- gradients from g1 (one process's)
local function ranks_step(opt, m, xv, obj, mode, ctx, g1)
  local l = tdist.global_objective(obj, mode)(forward(m, xv:narrow(1, R * b, b)), ctx)
  opt:zero_grad()
  l:backward()
  tdist.sync_grads { m }
  local worst = 0
  for i, e in ipairs(m:named_parameters()) do worst = math.max(worst, max_rel(flat(e[2]:grad()), g1[i], 1e-3)) end
  opt:step()
  return l, worst
end

-- the largest difference between two models' parameters and buffers
local function state_diff(a, bm)
  local worst, sb = 0, bm:state_dict()
  for k, t in pairs(a:state_dict()) do worst = math.max(worst, max_rel(flat(t), flat(sb[k]), 1)) end
  return worst
end

local specs = {
  visreg = vr.loss.visreg { lambda = 0.6, slices = 5 },
  swd = vr.loss.swd { lambda = 0.6, slices = 5 },
  sigreg = vr.loss.sigreg { lambda = 0.6, slices = 5 },
  vicreg = vr.loss.vicreg {},
  vicreg_pooled = vr.loss.vicreg_pooled { lambda = 0.6 },
  barlow = vr.loss.barlow {},
}
local names = { "visreg", "swd", "sigreg", "vicreg", "vicreg_pooled", "barlow" }

for _, name in ipairs(names) do
  for _, mode in ipairs { "shared", "per_rank" } do
    local obj = lossm.build(specs[name])
    local xv = name == "vicreg" and x:narrow(0, 0, 2) or x -- the official VICReg takes two views
    local ctx = { seed = 11, step = 3, global_views = 2 }
    -- one process, global batch: the mean over the ranks' slice draws (one draw in "shared")
    local m1 = model()
    local o1 = optim.build(vr.optim.adamw { lr = 1e-2, weight_decay = 0.05 }, m1:named_parameters())
    local z1 = forward(m1, xv)
    local draws = mode == "shared" and 1 or N
    local total
    for r = 0, draws - 1 do
      local l = obj(z1, { seed = tdist.slice_seed(ctx.seed, mode, r), step = ctx.step, global_views = 2 })
      total = total and total + l or l
    end
    local ref_loss = total:item() / draws
    local g1 = one_step(o1, m1, total * (1 / draws))
    -- the ranks, each with its part
    local m2 = model()
    local o2 = optim.build(vr.optim.adamw { lr = 1e-2, weight_decay = 0.05 }, m2:named_parameters())
    local l2, worst_g = ranks_step(o2, m2, xv, obj, mode, ctx, g1)
    local worst_p = state_diff(m2, m1)
    local what = name .. " " .. mode
    local le = math.abs(l2:item() - ref_loss) / math.max(1, math.abs(ref_loss))
    report(le <= TOL, what .. ": loss", string.format("%.17g vs %.17g", l2:item(), ref_loss))
    report(worst_g <= TOL, what .. ": every gradient", string.format("max relative difference %.3g", worst_g))
    report(worst_p <= TOL, what .. ": every parameter after the step", string.format("max relative difference %.3g", worst_p))
  end
end
-- synchronized batch norm: 2 ranks with dist.sync_bn equal one process's batch norm (statistics
-- of the global batch), gradients, parameters and running statistics included
do
  local function bn_model()
    random.manual_seed(7, 0)
    return nn.mlp { F, 12, D, norm = "batch", dtype = "f64" }
  end
  local obj = lossm.build(specs.visreg)
  local ctx = { seed = 11, step = 3, global_views = 2 }
  local m1 = bn_model()
  m1:train()
  local o1 = optim.build(vr.optim.adamw { lr = 1e-2 }, m1:named_parameters())
  local l1 = obj(forward(m1, x), ctx)
  local g1 = one_step(o1, m1, l1)
  local m2 = bn_model()
  m2:train()
  local synced = require("visreg.nn.sync_bn").convert(m2)
  local o2 = optim.build(vr.optim.adamw { lr = 1e-2 }, m2:named_parameters())
  local l2, wg = ranks_step(o2, m2, x, obj, "shared", ctx, g1)
  local wp = state_diff(m2, m1)
  report(synced == 1 and math.abs(l2:item() - l1:item()) <= TOL * math.max(1, math.abs(l1:item())),
    "sync batch norm: loss", string.format("%d synchronized, %.17g vs %.17g", synced, l2:item(), l1:item()))
  report(wg <= TOL, "sync batch norm: every gradient", string.format("max relative difference %.3g", wg))
  report(wp <= TOL, "sync batch norm: every parameter and running statistic after the step",
    string.format("max relative difference %.3g", wp))
end
-- synchronized BatchNorm2d on N x C x H x W: each rank's rows of one process's output, and the
-- same running statistics
do
  local x4 = tensor.zeros({ 4, 3, 2, 2 }, { dtype = "f64" })
  for i = 0, 47 do x4:view(-1):set(i, math.cos(0.7 * i + 0.1 * i * i)) end
  local b1, b2 = nn.BatchNorm2d(3, { dtype = "f64" }), nn.BatchNorm2d(3, { dtype = "f64" })
  b1:train(); b2:train()
  require("visreg.nn.sync_bn").convert(b2)
  local y1 = b1(x4):narrow(0, R * 2, 2)
  local y2 = b2(x4:narrow(0, R * 2, 2))
  local d = math.max(max_rel(flat(y2), flat(y1), 1), state_diff(b2, b1))
  report(d <= TOL, "sync BatchNorm2d: the output rows and running statistics of one process's", d)
end

-- a gradient that only rank 0 has is averaged with zeros; a parameter with none anywhere keeps none
do
  local used, unused = nn.Linear(2, 1, { dtype = "f64" }), nn.Linear(2, 1, { dtype = "f64" })
  if R == 0 then used(tensor.ones({ 1, 2 }, { dtype = "f64" })):sum():backward() end
  tdist.sync_grads { used, unused }
  local g = used.weight:grad()
  report(g ~= nil and math.abs(g:get(0, 0) - 1 / N) < 1e-15 and unused.weight:grad() == nil,
    "a gradient on rank 0 only is averaged with zeros; none anywhere stays none", g and g:get(0, 0))
end
dist.finalize()
