-- visreg.loss: the SSL objectives. A spec (vr.loss.visreg{...} etc.) is recipe data; build(spec)
-- gives an object whose forward(z, ctx) returns the loss and its terms, reading the spec's
-- values at every call so that schedules (loss.lambda, loss.slices, loss.weights.*) apply.
--
-- z is V x B x D (views, batch, dims), global views first. The objective is
--   L = lambda * L_reg + (1 - lambda) * L_inv,  L_inv = vr_invariance(z, global_views)
-- (lambda = 1 skips the invariance term: VICReg and Barlow Twins carry their own).
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local C = core.C
local new, outp = tensor.new, tensor.outp

local M = {}

local termsp = ffi.new("vr_tensor *[1]")

-- the result of a C regularizer that wrote loss to outp and terms to termsp
local function with_terms(st)
  local tp = termsp[0]
  termsp[0] = nil
  if st ~= 0 then
    if tp ~= nil then C.vr_tensor_free(tp) end
    outp[0] = nil
    util.error("%s", core.last_error())
  end
  return new(st), tensor.wrap(tp)
end

---------------------------------------------------------------- the regularizers, as functions
-- visreg(z, {slices = K or a D x K tensor, seed, step, weights = {scale, shape, center}}) -> loss, terms
function M.visreg_reg(z, o)
  o = o or {}
  local w = o.weights or {}
  local K = type(o.slices) == "number" and o.slices or 0
  local G = tensor.is_tensor(o.slices) and o.slices or nil
  return with_terms(C.vr_visreg(z, G, K, o.seed or 0, o.step or 0, w.scale or 1, w.shape or 1, w.center or 1, outp, termsp))
end
function M.sigreg_reg(z, o)
  o = o or {}
  local K = type(o.slices) == "number" and o.slices or 0
  local G = tensor.is_tensor(o.slices) and o.slices or nil
  return new(C.vr_sigreg(z, G, K, o.seed or 0, o.step or 0, o.knots or 17, o.t_max or 3, outp))
end
function M.swd_reg(z, o)
  o = o or {}
  local K = type(o.slices) == "number" and o.slices or 0
  local G = tensor.is_tensor(o.slices) and o.slices or nil
  return new(C.vr_swd(z, G, K, o.seed or 0, o.step or 0, outp))
end
function M.vicreg_reg(z, o)
  o = o or {}
  return with_terms(C.vr_vicreg(z, o.inv or 25, o.var or 25, o.cov or 1, outp, termsp))
end
function M.vicreg_pooled_reg(z, o)
  o = o or {}
  return with_terms(C.vr_vicreg_pooled(z, o.var or 25, o.cov or 1, outp, termsp))
end
function M.barlow_reg(z, o)
  o = o or {}
  return new(C.vr_barlow(z, o.offdiag or 0.0051, outp))
end
function M.invariance(z, global_views)
  return new(C.vr_invariance(z, global_views or z:size(0), outp))
end
function M.cross_entropy(logits, target, label_smoothing)
  return new(C.vr_cross_entropy(logits, target, label_smoothing or 0, outp))
end
-- the B Gaussian quantile targets sqrt(2) erfinv(2i/(B+1) - 1), i = 1..B
function M.gauss_quantiles(B, o)
  return new(C.vr_gauss_quantiles(B, core.dtype(o and o.dtype), core.device(o and o.device), outp))
end
-- a D x K matrix of unit-norm Gaussian columns from Philox keyed by (seed, step)
function M.draw_slices(D, K, o)
  o = o or {}
  return new(C.vr_draw_slices(D, K, o.seed or 0, o.step or 0, o.eps or 0, core.dtype(o.dtype), core.device(o.device), outp))
end

---------------------------------------------------------------- specs
local term_names = {
  visreg = { "center", "scale", "shape" },
  vicreg = { "inv", "var", "cov" },
  vicreg_pooled = { "var", "cov" },
}
term_names.vicreg_repo = term_names.vicreg_pooled

local function spec(kind, t, defaults, rules) return util.spec("vr.loss." .. kind, kind, t, defaults, rules) end

-- the values each loss accepts (checked when the spec is made and again after --set)
local LAMBDA = { min = 0, max = 1 }
local COUNT = { int = true, min = 1, max = 2 ^ 30 }
local SLICES = { desc = "a whole number of slices in [1, 2^30] or a D x K slice tensor", test = function(v, relaxed)
  return tensor.is_tensor(v) or util.rule_problem(v, COUNT, relaxed) == nil
end }
local WEIGHT = { min = 0 }

local VISREG_WEIGHTS = { scale = 1, shape = 1, center = 1 }
function M.visreg(t)
  -- weights given in part keep the others' defaults
  if type(t) == "table" and type(t.weights) == "table" then
    util.with_defaults("vr.loss.visreg: weights", t.weights, VISREG_WEIGHTS)
  end
  return spec("visreg", t, { lambda = 0.6, slices = 1024, weights = VISREG_WEIGHTS },
    { lambda = LAMBDA, slices = SLICES, ["weights.scale"] = WEIGHT, ["weights.shape"] = WEIGHT,
      ["weights.center"] = WEIGHT })
end
function M.sigreg(t)
  return spec("sigreg", t, { lambda = 0.02, slices = 1024, knots = 17, t_max = 3 },
    { lambda = LAMBDA, slices = SLICES, knots = { int = true, min = 2, max = 4096 }, t_max = { gt = 0 } })
end
function M.swd(t) return spec("swd", t, { lambda = 0.6, slices = 1024 }, { lambda = LAMBDA, slices = SLICES }) end
-- the official two-view VICReg (its own invariance term: lambda 1)
function M.vicreg(t)
  return spec("vicreg", t, { lambda = 1, inv = 25, var = 25, cov = 1 },
    { lambda = LAMBDA, inv = WEIGHT, var = WEIGHT, cov = WEIGHT })
end
-- the VISReg code's pooled squared-hinge variant, mixed with the invariance term
function M.vicreg_pooled(t)
  return spec("vicreg_pooled", t, { lambda = 0.6, var = 25, cov = 1 }, { lambda = LAMBDA, var = WEIGHT, cov = WEIGHT })
end
M.vicreg_repo = M.vicreg_pooled -- its former name, for older recipes
function M.barlow(t) return spec("barlow", t, { lambda = 1, offdiag = 0.0051 }, { lambda = LAMBDA, offdiag = WEIGHT }) end

-- looked up in M at each call, so a script may replace one
local regs = { visreg = "visreg_reg", sigreg = "sigreg_reg", swd = "swd_reg", vicreg = "vicreg_reg",
  vicreg_pooled = "vicreg_pooled_reg", vicreg_repo = "vicreg_pooled_reg", barlow = "barlow_reg" }

---------------------------------------------------------------- the objective
local Objective = {}
Objective.__index = Objective

function M.build(s)
  if type(s) ~= "table" or not regs[s.kind] then
    util.error("loss: expected vr.loss.visreg/sigreg/swd/vicreg/vicreg_pooled/barlow{...}, got %s",
      type(s) == "table" and tostring(s.kind) or type(s))
  end
  return setmetatable({ spec = s }, Objective)
end

-- forward(z, {seed=, step=, global_views=}) -> loss, terms (name -> 0-dim tensor, detached)
function Objective:forward(z, ctx)
  ctx = ctx or {}
  local s = self.spec
  if z:dim() ~= 3 then util.error("loss: z: expected V x B x D, got %d dims", z:dim()) end
  local o = {}
  for k, v in pairs(s) do o[k] = v end
  -- a scheduled slice count may be fractional: the nearest whole count (the recipe's own value is
  -- checked to be a whole count >= 1, and so is every scheduled value)
  if type(o.slices) == "number" then o.slices = math.floor(o.slices + 0.5) end
  o.seed, o.step = ctx.seed or 0, ctx.step or 0
  local reg, rterms = M[regs[s.kind]](z, o)
  local terms = { reg = reg:detach() }
  local names = term_names[s.kind]
  if names and rterms then
    for i, n in ipairs(names) do terms[n] = rterms:select(0, i - 1) end
  end
  local lambda = s.lambda
  local loss
  if lambda >= 1 then
    loss = reg
  else
    local inv = M.invariance(z, ctx.global_views or z:size(0))
    terms.invariance = inv:detach()
    loss = reg * lambda + inv * (1 - lambda)
  end
  return loss, terms
end
Objective.__call = Objective.forward

return M
