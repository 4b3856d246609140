-- The gradient each regularizer gives a collapsing embedding (the VISReg paper's Figure 2):
-- z0 ~ N(0, 1) of shape (V = 2, B = 64, D = 512), each row scaled to unit norm, z = r z0 for 50
-- values of r from 1e-5 to 10; for each regularizer the mean over rows of |dL/dz_row|_2 (the
-- sliced ones with K = 64 slices, averaged over 10 draws of the slices; no invariance term: each
-- regularizer alone, VICReg and Barlow Twins with their own two-view terms).
--   bin/visreg run recipes/paper/collapse_gradients.lua [OUT_DIR]
-- prints the table at a few r beside the paper's reference values, and writes OUT_DIR/collapse.svg
-- (log-log) and OUT_DIR/collapse.csv (every r). Default OUT_DIR: runs/paper.
local vr = require "visreg"
local loss, plot, util = vr.loss, require "visreg.plot", vr.util

local out = arg and arg[1] or "runs/paper"
local V, B, D, K, DRAWS = 2, 64, 512, 64, 10

vr.manual_seed(0)
local z0 = vr.randn(V, B, D, { dtype = "f64" })
z0 = z0 / z0:norm(2, 2, true) -- unit rows

local methods = {
  { "VISReg", function(z, seed) return (loss.visreg_reg(z, { slices = K, seed = seed })) end, true },
  { "SIGReg", function(z, seed) return loss.sigreg_reg(z, { slices = K, seed = seed }) end, true },
  { "SWD", function(z, seed) return loss.swd_reg(z, { slices = K, seed = seed }) end, true },
  -- the paper's VICReg is its code's pooled squared-hinge variant (vr.loss.vicreg_pooled); the official
  -- two-view VICReg's hinge on sqrt(var + eps) vanishes with r instead
  { "VICReg", function(z) return (loss.vicreg_pooled_reg(z)) end, false },
  { "Barlow", function(z) return loss.barlow_reg(z) end, false },
}

-- mean over the V x B rows of |dL/dz_row|
local function row_grad(fn, r, seed)
  local z = (z0 * r):detach():requires_grad_()
  fn(z, seed):backward()
  return z:grad():norm(2, 2):mean():item()
end

local rs = {}
for i = 0, 49 do rs[#rs + 1] = 10 ^ (-5 + 6 * i / 49) end
local curves = {}
for _, m in ipairs(methods) do
  local ys = {}
  for i, r in ipairs(rs) do
    local draws, acc = m[3] and DRAWS or 1, 0
    for s = 1, draws do acc = acc + row_grad(m[2], r, s - 1) end
    ys[i] = acc / draws
  end
  curves[#curves + 1] = { label = m[1], x = rs, y = ys }
end

-- the paper's reference values (its official script) at r = 1.26e-4 and r = 1e-5
local ref = { ["1.26e-04"] = { VICReg = 1.733e-2, Barlow = 9.05e4, SWD = 1.94e-3, SIGReg = 1.13e-6, VISReg = 53.4 },
  ["1.00e-05"] = { Barlow = 1.48e5, SWD = 1.94e-3, SIGReg = 9.0e-8, VISReg = 923 } }
local function at(curve, r) -- log-log interpolation between the two nearest r
  for i = 1, #rs - 1 do
    if r >= rs[i] and r <= rs[i + 1] then
      local t = (math.log(r) - math.log(rs[i])) / (math.log(rs[i + 1]) - math.log(rs[i]))
      return math.exp(math.log(curve.y[i]) + t * (math.log(curve.y[i + 1]) - math.log(curve.y[i])))
    end
  end
end
print(string.format("%-8s %12s %12s %12s %12s %12s", "method", "r = 1e-5", "paper", "r = 1.26e-4", "paper", "r = 1"))
for _, c in ipairs(curves) do
  local a, b = at(c, 1e-5), at(c, 1.26e-4)
  print(string.format("%-8s %12.4g %12s %12.4g %12s %12.4g", c.label, a, ref["1.00e-05"][c.label] and
    string.format("%.4g", ref["1.00e-05"][c.label]) or "-", b, string.format("%.4g", ref["1.26e-04"][c.label]), at(c, 1)))
end
util.mkdir_p(out)
plot.svg(curves, { path = out .. "/collapse.svg", csv = out .. "/collapse.csv", log_x = true, log_y = true,
  title = "mean |dL/dz| per row at collapse (z = r z0)", xlabel = "r", ylabel = "gradient norm" })
print("wrote " .. out .. "/collapse.svg and collapse.csv")
