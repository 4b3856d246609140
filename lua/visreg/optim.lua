-- visreg.optim: SGD (momentum, Nesterov), AdamW and LARS with parameter groups, no_decay rules
-- and gradient-norm clipping, as in PyTorch (LARS as in solo-learn). A spec (vr.optim.adamw{...})
-- is recipe data; build(spec, named_params) gives the optimizer, which reads lr and weight_decay
-- from the spec at every step so that schedules apply. Updates use the in-place core ops.
--
-- no_decay: a list of rules; "bias" matches parameters named *bias, "norm" the parameters of
-- normalisation layers, "1d" every parameter with fewer than 2 dims; anything else is a Lua
-- pattern matched against the parameter's name. Those parameters get no weight decay (and LARS
-- does not adapt their learning rate).
-- groups: { { match = "^projector%.", lr_scale = 2, weight_decay = 0 }, ... }: parameters whose
-- name matches take the group's settings.
--
-- AdamW runs fused: one vr_adamw_step over every parameter (one kernel launch on CUDA) instead of
-- several elementwise ops per tensor. Clipping computes the global norm and the factor
-- min(1, max_norm / (norm + 1e-6)) on the device (vr_grad_norm) and scales the gradients inside
-- the update (SGD and LARS: by a device multiply), so step() never waits for the device; it
-- returns the norm as a 0-dim tensor (read it with :item() only when logging). opt.fused = false
-- (or M.fused = false before build) selects the former per-tensor updates and host clipping,
-- which the fused path matches (tests/lua/test_optim_fused.lua).
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local C, check = core.C, core.check

local M = { fused = true }

local function spec(kind, t, defaults, rules) return util.spec("vr.optim." .. kind, kind, t, defaults, rules) end

-- the values each optimizer accepts (checked when the spec is made and again after --set)
local LR = { gt = 0 }
local NONNEG = { min = 0 }
local MOMENTUM = { min = 0, lt = 1 }

function M.sgd(t)
  return spec("sgd", t, { lr = 0.1, momentum = 0.9, nesterov = false, dampening = 0, weight_decay = 0,
    no_decay = {}, groups = {}, clip_grad_norm = 0 }, { lr = LR, momentum = MOMENTUM, nesterov = { boolean = true },
    dampening = { min = 0, max = 1 }, weight_decay = NONNEG, clip_grad_norm = NONNEG })
end
function M.adamw(t)
  return spec("adamw", t, { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0.05,
    no_decay = { "bias", "norm" }, groups = {}, clip_grad_norm = 0 }, { lr = LR,
    betas = { desc = "{beta1, beta2}, each in [0, 1)", test = function(v)
      return type(v) == "table" and #v == 2 and util.rule_problem(v[1], MOMENTUM) == nil and
        util.rule_problem(v[2], MOMENTUM) == nil end },
    eps = { gt = 0 }, weight_decay = NONNEG, clip_grad_norm = NONNEG })
end
function M.lars(t)
  return spec("lars", t, { lr = 0.3, momentum = 0.9, weight_decay = 1e-6, eta = 0.02, eps = 1e-8,
    no_decay = { "bias", "norm" }, groups = {}, clip_grad_norm = 0, clip_lr = false }, { lr = LR, momentum = MOMENTUM,
    weight_decay = NONNEG, eta = { gt = 0 }, eps = NONNEG, clip_grad_norm = NONNEG, clip_lr = { boolean = true } })
end

local function matches_rule(rule, name, p, mod)
  if rule == "bias" then return name:match("bias$") ~= nil end
  if rule == "norm" then return (mod and mod.is_norm) or name:match("norm") ~= nil end
  if rule == "1d" then return p:dim() < 2 end
  return name:match(rule) ~= nil
end

local Optimizer = {}
Optimizer.__index = Optimizer

-- named: list of {name, tensor, module} (Module:named_parameters(), or several concatenated)
function M.build(s, named)
  if type(s) ~= "table" or not (s.kind == "sgd" or s.kind == "adamw" or s.kind == "lars") then
    util.error("optim: expected vr.optim.sgd/adamw/lars{...}, got %s", type(s) == "table" and tostring(s.kind) or type(s))
  end
  local self = setmetatable({ spec = s, params = {}, state = {}, step_count = 0, fused = M.fused }, Optimizer)
  for _, e in ipairs(named) do
    local name, p, mod = e[1], e[2], e[3]
    local entry = { name = name, p = p, decay = true, lr_scale = 1, wd = nil }
    for _, rule in ipairs(s.no_decay or {}) do
      if matches_rule(rule, name, p, mod) then entry.decay = false end
    end
    for _, g in ipairs(s.groups or {}) do
      if g.match and name:match(g.match) then
        entry.lr_scale = g.lr_scale or 1
        if g.weight_decay ~= nil then entry.wd = g.weight_decay end
      end
    end
    self.params[#self.params + 1] = entry
  end
  return self
end

function Optimizer:zero_grad()
  for _, e in ipairs(self.params) do e.p:zero_grad() end
end

-- scales the gradients so that their global 2-norm is at most max_norm; returns the norm before
function Optimizer:clip_grad_norm(max_norm)
  return tensor.no_grad(function()
    local grads, total = {}, nil
    for _, e in ipairs(self.params) do
      local g = e.p:grad()
      if g then
        grads[#grads + 1] = g
        local sq = g:square():sum()
        total = total and total + sq or sq
      end
    end
    if not total then return 0 end
    local norm = math.sqrt(total:item())
    if max_norm and max_norm > 0 and norm > max_norm then
      local scale = max_norm / (norm + 1e-6)
      for _, g in ipairs(grads) do g:mul_(scale) end
    end
    return norm
  end)
end

local function wd_of(s, e)
  if e.wd ~= nil then return e.wd end
  return e.decay and s.weight_decay or 0
end

local function adamw_init(st, p)
  if not st.exp_avg then
    st.exp_avg = tensor.zeros(p:shape(), { dtype = p:dtype(), device = p:device() })
    st.exp_avg_sq = tensor.zeros(p:shape(), { dtype = p:dtype(), device = p:device() })
    st.step = 0
  end
end

local function adamw_step(self, e, g, st, lr)
  local s = self.spec
  local b1, b2 = s.betas[1], s.betas[2]
  local p = e.p
  local wd = wd_of(s, e)
  if wd ~= 0 then p:mul_(1 - lr * wd) end
  adamw_init(st, p)
  st.step = st.step + 1
  st.exp_avg:mul_(b1):add_(g, 1 - b1)
  st.exp_avg_sq:mul_(b2):add_(g:square(), 1 - b2)
  local bc1 = 1 - b1 ^ st.step
  local bc2 = 1 - b2 ^ st.step
  local denom = st.exp_avg_sq:sqrt() * (1 / math.sqrt(bc2)) + s.eps
  p:add_(st.exp_avg / denom, -lr / bc1)
end

local function momentum_update(s, st, p, g, lr, nesterov, dampening)
  if s.momentum ~= 0 then
    if not st.momentum_buffer then
      st.momentum_buffer = g:clone()
    else
      st.momentum_buffer:mul_(s.momentum):add_(g, 1 - (dampening or 0))
    end
    if nesterov then g = g + st.momentum_buffer * s.momentum else g = st.momentum_buffer end
  end
  p:add_(g, -lr)
end

local function sgd_step(self, e, g, st, lr)
  local s = self.spec
  local wd = wd_of(s, e)
  if wd ~= 0 then g = g + e.p * wd end
  momentum_update(s, st, e.p, g, lr, s.nesterov, s.dampening)
end

local function lars_step(self, e, g, st, lr)
  local s = self.spec
  local p = e.p
  local wd = wd_of(s, e)
  if e.decay and e.wd == nil then
    local pn = p:norm():item()
    local gn = g:norm():item()
    if pn > 0 and gn > 0 then
      local trust = s.eta * pn / (gn + pn * wd + s.eps)
      if s.clip_lr then trust = math.min(trust / lr, 1) end
      g = (g + p * wd) * trust
    elseif wd ~= 0 then
      g = g + p * wd
    end
  elseif wd ~= 0 then
    g = g + p * wd
  end
  momentum_update(s, st, p, g, lr, false, 0)
end

local steps = { adamw = adamw_step, sgd = sgd_step, lars = lars_step }

local FUSED_DTYPES = { [tonumber(C.VR_F32)] = true, [tonumber(C.VR_F64)] = true }

local function tensor_array(list)
  local a = ffi.new("vr_tensor *[?]", #list)
  for i, t in ipairs(list) do a[i - 1] = t end
  return a
end

-- the global norm of grads and the clip factor as 0-dim tensors on their device (vr_grad_norm);
-- nil when the gradients are not of one float dtype and one device
local function device_norm(grads, max_norm)
  local dt, dev = C.vr_tensor_dtype(grads[1]), C.vr_tensor_device(grads[1])
  if not FUSED_DTYPES[tonumber(dt)] then return nil end
  for i = 2, #grads do
    if C.vr_tensor_dtype(grads[i]) ~= dt or C.vr_tensor_device(grads[i]) ~= dev then return nil end
  end
  local no, co = ffi.new("vr_tensor *[1]"), ffi.new("vr_tensor *[1]")
  check(C.vr_grad_norm(tensor_array(grads), #grads, max_norm, no, co))
  return tensor.wrap(no[0]), tensor.wrap(co[0])
end

-- whether the fused op takes this parameter (f32/f64, contiguous parameter and state)
local function fusable(p, g, st)
  return FUSED_DTYPES[tonumber(C.vr_tensor_dtype(p))] and C.vr_tensor_dtype(g) == C.vr_tensor_dtype(p)
    and C.vr_tensor_device(g) == C.vr_tensor_device(p) and p:is_contiguous() and st.exp_avg:is_contiguous()
    and st.exp_avg_sq:is_contiguous()
end

-- items: { e, g, st } of parameters with gradients (states initialised); one vr_adamw_step per
-- (dtype, device, step count), which is one call in training
local function adamw_fused(self, items, scale)
  local s = self.spec
  local groups, order = {}, {}
  for _, it in ipairs(items) do
    local p = it.e.p
    it.st.step = it.st.step + 1
    local key = tonumber(C.vr_tensor_dtype(p)) .. ":" .. tonumber(C.vr_tensor_device(p)) .. ":" .. it.st.step
    local grp = groups[key]
    if not grp then grp = { step = it.st.step }; groups[key] = grp; order[#order + 1] = grp end
    grp[#grp + 1] = it
  end
  for _, grp in ipairs(order) do
    local n = #grp
    local P, G, Mo, V = {}, {}, {}, {}
    local wd, ls = ffi.new("double[?]", n), ffi.new("double[?]", n)
    for k, it in ipairs(grp) do
      P[k], G[k], Mo[k], V[k] = it.e.p, it.g, it.st.exp_avg, it.st.exp_avg_sq
      wd[k - 1] = wd_of(s, it.e)
      ls[k - 1] = it.e.lr_scale
    end
    local sc = scale
    if sc and C.vr_tensor_device(sc) ~= C.vr_tensor_device(P[1]) then sc = nil end
    check(C.vr_adamw_step(tensor_array(P), tensor_array(G), tensor_array(Mo), tensor_array(V), n, wd, ls, s.lr,
      s.betas[1], s.betas[2], s.eps, grp.step, sc))
  end
end

-- one update of every parameter that has a gradient; clips first when spec.clip_grad_norm > 0 and
-- then returns the norm before clipping (a 0-dim tensor on the parameters' device, or a number when
-- the gradients mix dtypes or devices and the host path clipped them)
function Optimizer:step()
  local s = self.spec
  local clip = s.clip_grad_norm and s.clip_grad_norm > 0 and s.clip_grad_norm or nil
  local norm
  tensor.no_grad(function()
    local items, grads = {}, {}
    for i, e in ipairs(self.params) do
      local g = e.p:grad()
      if g then
        local st = self.state[i]
        if not st then st = {}; self.state[i] = st end
        items[#items + 1] = { e = e, g = g, st = st }
        grads[#grads + 1] = g
      end
    end
    local scale
    if clip then
      if #grads == 0 then norm = 0
      else
        if self.fused then norm, scale = device_norm(grads, clip) end
        if not norm then norm = self:clip_grad_norm(clip) end -- on the host, in place
      end
    end
    local rest = items
    if s.kind == "adamw" and self.fused then
      local fused
      fused, rest = {}, {}
      for _, it in ipairs(items) do
        adamw_init(it.st, it.e.p)
        if fusable(it.e.p, it.g, it.st) then fused[#fused + 1] = it else rest[#rest + 1] = it end
      end
      if #fused > 0 then adamw_fused(self, fused, scale) end
    end
    local f = steps[s.kind]
    for _, it in ipairs(rest) do
      local g = it.g
      if scale then g = g * scale end
      f(self, it.e, g, it.st, s.lr * it.e.lr_scale)
    end
  end)
  self.step_count = self.step_count + 1
  return norm
end

-- tensors (name -> tensor) and scalars (JSON-able) of the optimizer's state
-- prefix (default "optim.") starts the tensors' names
function Optimizer:state_dict(prefix)
  prefix = prefix or "optim."
  local tensors, meta = {}, { step_count = self.step_count, steps = {} }
  for i, e in ipairs(self.params) do
    local st = self.state[i]
    if st then
      for k, v in pairs(st) do
        if tensor.is_tensor(v) then tensors[prefix .. e.name .. "." .. k] = v end
      end
      if st.step then meta.steps[e.name] = st.step end
    end
  end
  return tensors, meta
end

function Optimizer:load_state_dict(tensors, meta, prefix)
  prefix = prefix or "optim."
  local p = util.rule_problem(meta.step_count or 0, { int = true, min = 0 })
  if p then util.error("load_state_dict: step_count: %s", p) end
  self.step_count = meta.step_count or 0
  for i, e in ipairs(self.params) do
    local st = {}
    local any = false
    for _, k in ipairs { "exp_avg", "exp_avg_sq", "momentum_buffer" } do
      local name = prefix .. e.name .. "." .. k
      local t = tensors[name]
      if t then
        -- the parameter's dtype and shape, as saved: nothing is converted
        if not tensor.is_tensor(t) then util.error("load_state_dict: '%s': expected a tensor, got %s", name, type(t)) end
        if t:shape_str() ~= e.p:shape_str() then
          util.error("load_state_dict: '%s': expected shape %s, got %s", name, e.p:shape_str(), t:shape_str())
        end
        if t:dtype() ~= e.p:dtype() then
          util.error("load_state_dict: '%s': expected dtype %s, got %s", name, e.p:dtype(), t:dtype())
        end
        st[k] = t:to { dtype = e.p:dtype(), device = e.p:device() }:clone()
        any = true
      end
    end
    local step = type(meta.steps) == "table" and meta.steps[e.name]
    if step ~= nil and step ~= false then
      local p = util.rule_problem(step, { int = true, min = 0 })
      if p then util.error("load_state_dict: steps['%s']: %s", e.name, p) end
      st.step = step
    end
    self.state[i] = any and st or nil
  end
end

return M
