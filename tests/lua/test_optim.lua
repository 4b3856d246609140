-- optimisers against hand computation: SGD (momentum, Nesterov, weight decay), AdamW (bias
-- correction, decoupled decay, no_decay rules), LARS, gradient-norm clipping, state round trip
local tap = require "tap"
local vr = require "visreg"
local nn, optim = vr.nn, vr.optim
local f64 = { dtype = "f64" }

-- one parameter p with a fixed gradient g at each step
local function run(spec, p0, grads, named_extra)
  local p = vr.tensor(p0, f64):requires_grad_()
  local named = { { "layer.weight", p, {} } }
  local opt = optim.build(spec, named)
  for _, g in ipairs(grads) do
    p:set_grad(vr.tensor(g, f64))
    opt:step()
  end
  return p:to_list(), opt
end

-- SGD with momentum 0.9, dampening 0, weight decay 0.1
do
  local lr, mom, wd = 0.1, 0.9, 0.1
  local p, buf = { 1.0, -2.0 }, nil
  local grads = { { 0.5, 0.25 }, { -1.0, 2.0 }, { 0.1, 0.1 } }
  for _, g in ipairs(grads) do
    local d = { g[1] + wd * p[1], g[2] + wd * p[2] }
    if not buf then buf = d else buf = { mom * buf[1] + d[1], mom * buf[2] + d[2] } end
    p = { p[1] - lr * buf[1], p[2] - lr * buf[2] }
  end
  local got = run(optim.sgd { lr = lr, momentum = mom, weight_decay = wd }, { 1.0, -2.0 }, grads)
  tap.all_near(got, p, 1e-14, "SGD with momentum and weight decay matches the hand computation")
end
do -- Nesterov
  local lr, mom = 0.05, 0.9
  local p, buf = { 0.3 }, nil
  local grads = { { 1.0 }, { 0.5 }, { -0.25 } }
  for _, g in ipairs(grads) do
    if not buf then buf = { g[1] } else buf = { mom * buf[1] + g[1] } end
    p = { p[1] - lr * (g[1] + mom * buf[1]) }
  end
  tap.all_near(run(optim.sgd { lr = lr, momentum = mom, nesterov = true }, { 0.3 }, grads), p, 1e-14, "SGD Nesterov")
end

-- AdamW (PyTorch): decoupled decay, bias-corrected moments
do
  local lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.05
  local p, m, v = { 1.0, -0.5 }, { 0, 0 }, { 0, 0 }
  local grads = { { 0.3, -0.1 }, { 0.2, 0.4 }, { -0.5, 0.05 } }
  for t, g in ipairs(grads) do
    for i = 1, 2 do
      p[i] = p[i] * (1 - lr * wd)
      m[i] = b1 * m[i] + (1 - b1) * g[i]
      v[i] = b2 * v[i] + (1 - b2) * g[i] ^ 2
      local mh, vh = m[i] / (1 - b1 ^ t), v[i] / (1 - b2 ^ t)
      p[i] = p[i] - lr * mh / (math.sqrt(vh) + eps)
    end
  end
  local got = run(optim.adamw { lr = lr, weight_decay = wd }, { 1.0, -0.5 }, grads)
  tap.all_near(got, p, 1e-12, "AdamW matches the hand computation")
end

-- LARS (solo-learn): trust ratio eta |p| / (|g| + wd |p|), then SGD momentum
do
  local lr, mom, wd, eta = 0.5, 0.9, 1e-3, 0.02
  local p, buf = { 3.0, 4.0 }, nil
  local grads = { { 0.6, 0.8 }, { -0.3, 0.4 } }
  for _, g in ipairs(grads) do
    local pn = math.sqrt(p[1] ^ 2 + p[2] ^ 2)
    local gn = math.sqrt(g[1] ^ 2 + g[2] ^ 2)
    local trust = eta * pn / (gn + pn * wd + 1e-8)
    local d = { (g[1] + wd * p[1]) * trust, (g[2] + wd * p[2]) * trust }
    if not buf then buf = d else buf = { mom * buf[1] + d[1], mom * buf[2] + d[2] } end
    p = { p[1] - lr * buf[1], p[2] - lr * buf[2] }
  end
  tap.all_near(run(optim.lars { lr = lr, momentum = mom, weight_decay = wd, eta = eta }, { 3.0, 4.0 }, grads), p, 1e-13,
    "LARS matches the hand computation")
end

-- no_decay: biases and norm parameters get no weight decay
do
  local m = nn.Sequential(nn.Linear(2, 2, f64), nn.BatchNorm1d(2, f64))
  local opt = optim.build(optim.adamw { lr = 0.1, weight_decay = 0.5 }, m:named_parameters())
  local decays = {}
  for _, e in ipairs(opt.params) do decays[e.name] = e.decay end
  tap.ok(decays["0.weight"] and not decays["0.bias"] and not decays["1.weight"] and not decays["1.bias"],
    "no_decay = {bias, norm} exempts biases and norm layers", vr.util.json_encode(decays))
  -- with zero gradients only the decay moves weights
  for _, e in ipairs(opt.params) do e.p:set_grad(vr.zeros(e.p:shape(), f64)) end
  local w0, b0 = m["0"].weight:to_list(), m["0"].bias:to_list()
  opt:step()
  tap.near(m["0"].weight:to_list()[1], w0[1] * (1 - 0.1 * 0.5), 1e-12, "decayed weight shrinks by lr * wd")
  tap.all_near(m["0"].bias:to_list(), b0, 0, "a bias is not decayed")
  local g = optim.build(optim.sgd { lr = 1, groups = { { match = "^1%.", lr_scale = 0.5, weight_decay = 0 } } }, m:named_parameters())
  tap.ok(g.params[3].lr_scale == 0.5 and g.params[1].lr_scale == 1, "param groups match names")
end

-- gradient-norm clipping
do
  local a = vr.tensor({ 3.0 }, f64):requires_grad_()
  local b = vr.tensor({ 0.0, 0.0 }, f64):requires_grad_()
  local opt = optim.build(optim.sgd { lr = 1, momentum = 0 }, { { "a", a }, { "b", b } })
  a:set_grad(vr.tensor({ 3.0 }, f64))
  b:set_grad(vr.tensor({ 4.0, 0.0 }, f64))
  local n = opt:clip_grad_norm(1.0)
  tap.near(n, 5, 1e-12, "clip_grad_norm returns the global norm")
  tap.near(a:grad():item(), 3 / (5 + 1e-6), 1e-12, "clipping scales every gradient by max_norm / norm")
  n = opt:clip_grad_norm(10)
  tap.near(b:grad():get(0), 4 / (5 + 1e-6), 1e-12, "a norm below the limit is left alone")
end

-- state round trip: two steps equal one step, a save/load, one step
do
  local spec = optim.adamw { lr = 0.01 }
  local grads = { { 0.3, -0.1 }, { 0.2, 0.4 } }
  local want = run(spec, { 1, 2 }, grads)
  local p = vr.tensor({ 1, 2 }, f64):requires_grad_()
  local opt = optim.build(spec, { { "w", p } })
  p:set_grad(vr.tensor(grads[1], f64)); opt:step()
  local tensors, meta = opt:state_dict()
  local copy = {}
  for k, v in pairs(tensors) do copy[k] = v:clone() end
  local opt2 = optim.build(spec, { { "w", p } })
  opt2:load_state_dict(copy, vr.util.json_decode(vr.util.json_encode(meta)))
  p:set_grad(vr.tensor(grads[2], f64)); opt2:step()
  tap.all_near(p:to_list(), want, 0, "optimizer state round-trips exactly")
end

-- schedules drive the optimizer through the spec
do
  local spec = optim.sgd { lr = 1, momentum = 0 }
  local p = vr.tensor({ 0.0 }, f64):requires_grad_()
  local opt = optim.build(spec, { { "w", p } })
  spec.lr = 0.25
  p:set_grad(vr.tensor({ 1.0 }, f64)); opt:step()
  tap.near(p:item(), -0.25, 0, "the optimizer reads lr from its spec at every step")
end

tap.raises(function() optim.adamw { betas = 0.9, lrr = 1 } end, { "unknown key 'lrr'", "lr" }, "optimizer options are checked")
os.exit(tap.done(), true)
