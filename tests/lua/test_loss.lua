-- the loss wrappers: the mixed objective lambda * L_reg + (1 - lambda) * L_inv, the terms, the
-- invariance term against a Lua computation, fixed slices, gradients flowing, cross-entropy
local tap = require "tap"
local vr = require "visreg"
local loss = vr.loss
local f64 = { dtype = "f64" }

if not pcall(function() return vr.C.vr_visreg end) then
  tap.skip("losses", "the regularizers are not in this build")
  os.exit(tap.done(), true)
end

vr.manual_seed(1)
local z = vr.randn(2, 32, 8, f64)

-- invariance: mean over views, batch and dims of (z - mean of the global views)^2
local m = z:mean(0, true)
tap.near(loss.invariance(z, 2):item(), (z - m):square():mean():item(), 1e-12, "invariance matches its definition")
local z3 = vr.randn(3, 16, 4, f64)
local m1 = z3:narrow(0, 0, 1)
tap.near(loss.invariance(z3, 1):item(), (z3 - m1):square():mean():item(), 1e-12, "invariance with one global view")

-- the objective mixes the regularizer and the invariance term
local G = vr.randn(8, 16, f64)
tap.eq(loss.vicreg_repo { lambda = 0.3 }.kind, "vicreg_pooled", "vr.loss.vicreg_repo, the former name, makes vicreg_pooled")
for _, kind in ipairs { "visreg", "sigreg", "swd", "vicreg_pooled" } do
  local spec = loss[kind] { lambda = 0.3 }
  spec.slices = (kind ~= "vicreg_pooled") and 16 or nil
  local obj = loss.build(spec)
  local total, terms = obj(z, { seed = 5, step = 7, global_views = 2 })
  local reg = loss[kind .. "_reg"](z, { slices = 16, seed = 5, step = 7 })
  local want = 0.3 * reg:item() + 0.7 * loss.invariance(z, 2):item()
  tap.near(total:item(), want, 1e-10, kind .. ": lambda * L_reg + (1 - lambda) * L_inv")
  tap.near(terms.reg:item(), reg:item(), 1e-12, kind .. ": the reg term is reported")
end
local obj = loss.build(loss.visreg { lambda = 1, slices = G })
local v, terms = obj(z)
local sum = terms.center:item() + terms.scale:item() + terms.shape:item()
tap.near(v:item(), sum, 1e-10, "visreg with unit weights is the sum of center, scale and shape")
tap.ok(terms.invariance == nil, "lambda 1 skips the invariance term")
local w = loss.build(loss.visreg { lambda = 1, slices = G, weights = { scale = 0.5, shape = 2, center = 0.5 } })(z)
tap.near(w:item(), 0.5 * terms.scale:item() + 2 * terms.shape:item() + 0.5 * terms.center:item(), 1e-10,
  "visreg weights scale its terms")
local spec = loss.visreg { slices = 64 }
local o2 = loss.build(spec)
local a = o2(z, { seed = 1, step = 1 }):item()
local b = o2(z, { seed = 1, step = 2 }):item()
tap.ok(a ~= b, "a new set of slices is drawn at every step")
tap.near(o2(z, { seed = 1, step = 1 }):item(), a, 0, "slices are a pure function of (seed, step)")
spec.lambda = 0.5
tap.ok(o2(z, { seed = 1, step = 1 }):item() ~= a, "the objective reads lambda from its spec (schedules)")

-- gradients flow to z
local zz = vr.randn(2, 16, 4, f64):requires_grad_()
loss.build(loss.vicreg {})(zz):backward()
tap.ok(zz:grad() and zz:grad():norm():item() > 0, "vicreg: gradients flow to z")
local zb = vr.randn(2, 16, 4, f64):requires_grad_()
loss.build(loss.barlow {})(zb):backward()
tap.ok(zb:grad() and zb:grad():norm():item() > 0, "barlow: gradients flow to z")

-- cross-entropy
local logits = vr.tensor({ { 2, 0, 0 }, { 0, 0, 3 } }, f64)
local target = vr.tensor({ 0, 2 }, { dtype = "i64" })
local lse1, lse2 = math.log(math.exp(2) + 2), math.log(math.exp(3) + 2)
tap.near(loss.cross_entropy(logits, target):item(), ((lse1 - 2) + (lse2 - 3)) / 2, 1e-12, "cross-entropy")

tap.raises(function() loss.build({ kind = "nope" }) end, { "vr.loss.visreg" }, "unknown objectives are refused")
tap.raises(function() local r = loss.build(loss.visreg {})(vr.randn(4, 4)); return r end, { "V x B x D" }, "z must be V x B x D")
os.exit(tap.done(), true)
