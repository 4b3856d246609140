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

local specs = {
  visreg = vr.loss.visreg { lambda = 0.6, slices = 5 },
  swd = vr.loss.swd { lambda = 0.6, slices = 5 },
  sigreg = vr.loss.sigreg { lambda = 0.6, slices = 5 },
  vicreg = vr.loss.vicreg {},
  vicreg_repo = vr.loss.vicreg_repo { lambda = 0.6 },
  barlow = vr.loss.barlow {},
}
local names = { "visreg", "swd", "sigreg", "vicreg", "vicreg_repo", "barlow" }

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
    local ref_loss
    local total
    for r = 0, draws - 1 do
      local c = { seed = tdist.slice_seed(ctx.seed, mode, r), step = ctx.step, global_views = 2 }
      local l = obj(z1, c)
      if r == 0 then ref_loss = l:item() end
      total = total and total + l or l
    end
    total = total * (1 / draws)
    o1:zero_grad()
    total:backward()
    local g1 = {}
    for _, e in ipairs(m1:named_parameters()) do g1[#g1 + 1] = flat(e[2]:grad()) end
    o1:step()
    -- the ranks, each with its part
    local m2 = model()
    local o2 = optim.build(vr.optim.adamw { lr = 1e-2, weight_decay = 0.05 }, m2:named_parameters())
    local z2 = forward(m2, xv:narrow(1, R * b, b))
    local gobj = tdist.global_objective(obj, mode)
    local l2 = gobj(z2, ctx)
    o2:zero_grad()
    l2:backward()
    tdist.sync_grads { m2 }
    local worst_g = 0
    for i, e in ipairs(m2:named_parameters()) do worst_g = math.max(worst_g, max_rel(flat(e[2]:grad()), g1[i], 1e-3)) end
    o2:step()
    local worst_p = 0
    local p1 = m1:named_parameters()
    for i, e in ipairs(m2:named_parameters()) do worst_p = math.max(worst_p, max_rel(flat(e[2]), flat(p1[i][2]), 1)) end
    local what = name .. " " .. mode
    -- "per_rank": rank r's loss is its own draw's; rank 0's draw is the one-process draw 0
    if mode == "shared" or R == 0 then
      local le = math.abs(l2:item() - ref_loss) / math.max(1, math.abs(ref_loss))
      report(le <= TOL, what .. ": loss", string.format("%.17g vs %.17g", l2:item(), ref_loss))
    end
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
  o1:zero_grad()
  l1:backward()
  local g1 = {}
  for _, e in ipairs(m1:named_parameters()) do g1[#g1 + 1] = flat(e[2]:grad()) end
  o1:step()
  local m2 = bn_model()
  m2:train()
  local synced = require("visreg.nn.sync_bn").convert(m2)
  local o2 = optim.build(vr.optim.adamw { lr = 1e-2 }, m2:named_parameters())
  local l2 = tdist.global_objective(obj, "shared")(forward(m2, x:narrow(1, R * b, b)), ctx)
  o2:zero_grad()
  l2:backward()
  tdist.sync_grads { m2 }
  local wg = 0
  for i, e in ipairs(m2:named_parameters()) do wg = math.max(wg, max_rel(flat(e[2]:grad()), g1[i], 1e-3)) end
  o2:step()
  local wp = 0
  local s1 = m1:state_dict()
  for k, t in pairs(m2:state_dict()) do wp = math.max(wp, max_rel(flat(t), flat(s1[k]), 1)) end
  report(synced == 1 and math.abs(l2:item() - l1:item()) <= TOL * math.max(1, math.abs(l1:item())),
    "sync batch norm: loss", string.format("%d synchronized, %.17g vs %.17g", synced, l2:item(), l1:item()))
  report(wg <= TOL, "sync batch norm: every gradient", string.format("max relative difference %.3g", wg))
  report(wp <= TOL, "sync batch norm: every parameter and running statistic after the step",
    string.format("max relative difference %.3g", wp))
end
dist.finalize()
