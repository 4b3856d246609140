-- the fused AdamW (one vr_adamw_step over all parameters) and the device-side clipping against the
-- per-tensor path (opt.fused = false) it replaced: several steps of a small model in f64 and f32
-- with no_decay rules, a parameter group, clipping on and off; the norm step() returns; and the
-- trainer's optimizer giving the same parameters both ways on a short run
local tap = require "tap"
local vr = require "visreg"
local nn, optim = vr.nn, vr.optim

-- no bias right before the batch norm: its true gradient is 0, and Adam turns the rounding noise
-- computed in its place into steps of size lr, which no two orders of arithmetic reproduce
local function model(dtype)
  vr.manual_seed(5, 0)
  return nn.Sequential(nn.Linear(6, 8, { dtype = dtype }), nn.ReLU(), nn.BatchNorm1d(8, { dtype = dtype }),
    nn.Linear(8, 3, { dtype = dtype }))
end

-- k steps of spec on a fresh model; returns the parameters (host lists) and step()'s results
local function run(spec, dtype, fused, k)
  local m = model(dtype)
  local opt = optim.build(spec, m:named_parameters())
  opt.fused = fused
  local norms = {}
  vr.manual_seed(9, 0)
  for step = 1, k do
    local x = vr.randn(16, 6):to(dtype)
    local loss = (m(x) * (step / 2)):square():mean()
    opt:zero_grad()
    loss:backward()
    norms[step] = opt:step()
  end
  local out = {}
  for _, e in ipairs(m:named_parameters()) do out[e[1]] = e[2]:to_list() end
  return out, norms, opt
end

local function flat(list, acc)
  acc = acc or {}
  for _, v in ipairs(list) do
    if type(v) == "table" then flat(v, acc) else acc[#acc + 1] = v end
  end
  return acc
end

local function same(a, b, tol, what)
  local worst, at = 0, ""
  for name, v in pairs(a) do
    local x, y = flat(v), flat(b[name])
    for i = 1, #x do
      local d = math.abs(x[i] - y[i]) / (1 + math.abs(y[i]))
      if d > worst then worst, at = d, name end
    end
  end
  tap.ok(worst <= tol, what, string.format("worst relative difference %.3g (%s)", worst, at))
end

local specs = {
  { "AdamW", function() return optim.adamw { lr = 0.05, weight_decay = 0.1 } end },
  { "AdamW clipped at 0.5", function() return optim.adamw { lr = 0.05, weight_decay = 0.1, clip_grad_norm = 0.5 } end },
  { "AdamW with a group and no no_decay", function()
    return optim.adamw { lr = 0.02, weight_decay = 0.05, no_decay = {}, clip_grad_norm = 100,
      groups = { { match = "^3%.", lr_scale = 3, weight_decay = 0 } } } end },
}
for _, dt in ipairs { { "f64", 1e-6 }, { "f32", 1e-5 } } do
  for _, s in ipairs(specs) do
    local a = run(s[2](), dt[1], true, 6)
    local b = run(s[2](), dt[1], false, 6)
    same(a, b, dt[2], string.format("%s %s: fused equals the per-tensor path after 6 steps", dt[1], s[1]))
  end
end

-- the norm step() returns: a 0-dim tensor equal to the host computation before clipping
do
  local _, fn = run(specs[2][2](), "f64", true, 2)
  local _, pn = run(specs[2][2](), "f64", false, 2)
  tap.ok(vr.is_tensor(fn[1]) and fn[1]:dim() == 0, "step() returns the norm as a 0-dim tensor", tostring(fn[1]))
  tap.near(fn[1]:item(), vr.is_tensor(pn[1]) and pn[1]:item() or pn[1], 1e-12, "the device norm is the global gradient norm")
  tap.ok(fn[2]:item() > 0.5, "the norm is taken before clipping")
  local _, none = run(specs[1][2](), "f64", true, 1)
  tap.ok(none[1] == nil, "without clip_grad_norm step() returns nothing")
end

-- SGD and LARS keep their path, clipping through the device factor too
do
  local s = function() return optim.sgd { lr = 0.1, momentum = 0.9, weight_decay = 1e-3, clip_grad_norm = 0.5 } end
  local a, an = run(s(), "f64", true, 4)
  local b = run(s(), "f64", false, 4)
  same(a, b, 1e-14, "SGD with clipping is unchanged by the fused flag")
  tap.ok(vr.is_tensor(an[1]), "SGD's step() returns the norm as a tensor too")
end

-- parameters without gradients are skipped and keep their own step counts
do
  local p = vr.tensor({ 1.0, 2.0 }, { dtype = "f64" }):requires_grad_()
  local q = vr.tensor({ 3.0 }, { dtype = "f64" }):requires_grad_()
  local function go(fused)
    local pp, qq = p:clone():detach():requires_grad_(), q:clone():detach():requires_grad_()
    local opt = optim.build(optim.adamw { lr = 0.1 }, { { "p", pp }, { "q", qq } })
    opt.fused = fused
    pp:set_grad(vr.tensor({ 0.5, -0.5 }, { dtype = "f64" })); opt:step()
    pp:set_grad(vr.tensor({ 0.25, 1.0 }, { dtype = "f64" })); qq:set_grad(vr.tensor({ 2.0 }, { dtype = "f64" })); opt:step()
    return { pp:to_list(), qq:to_list() }, opt
  end
  local a, oa = go(true)
  local b = go(false)
  tap.all_near(flat(a), flat(b), 1e-15, "steps over changing gradient sets match (two step counts in one call)")
  tap.ok(oa.state[1].step == 2 and oa.state[2].step == 1, "each parameter counts its own steps")
end

-- the trainer's optimizer: a short run gives the same parameters fused and per-tensor
if tap.can_train("the trainer's optimizer") then
  local recipe = require "visreg.recipe"
  local trainer = require "visreg.trainer"
  local src = [[
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment
return vr.recipe {
  seed = 4, epochs = 1, batch = 32, device = "cpu",
  data = vr.data.fashion_mnist { subset = 128, test_subset = 64 },
  views = { global = { n = 2, pipeline = { aug.random_resized_crop { scale = { 0.5, 1 } }, aug.normalize { mean = 0.3, std = 0.35 } } } },
  model = function()
    -- no biases before the batch norms: their gradient is rounding noise, which Adam's
    -- normalisation turns into full steps of either sign, so the two paths' last-bit differences
    -- (the host and the device sum the clipping norm in different orders) would not stay small
    local enc = nn.smallcnn { width = 4 }
    return enc, nn.mlp { enc.out_dim, 32, 16, bias = false }
  end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 32 },
  optim = vr.optim.adamw { lr = 3e-3, weight_decay = 0.05, clip_grad_norm = 1 },
  schedule = { lr = vr.schedule.warmup_cosine { warmup_epochs = 0.5 } },
  log = { every = 1, progress = false },
  loader = { workers = 0 },
}
]]
  local function params(fused)
    optim.fused = fused
    local r = recipe.load_source(src, "tiny.lua", {})
    local t = trainer.setup(r, { quiet = true })
    t.opts.stop_at_step = 3
    trainer.fit(t)
    if t.loader then t.loader:close() end
    optim.fused = true
    local out = {}
    for _, m in ipairs { { "e.", t.enc }, { "p.", t.proj } } do
      for _, e in ipairs(m[2]:named_parameters()) do out[m[1] .. e[1]] = e[2]:to_list() end
    end
    return out
  end
  same(params(true), params(false), 1e-5, "3 trainer steps (f32, clipping, lr schedule): fused equals per-tensor")
end

os.exit(tap.done(), true)
