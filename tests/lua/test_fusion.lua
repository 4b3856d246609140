-- fused batch norm + (residual add) + ReLU (+ max pooling) (nn.fusion.bn_act): F.batch_norm's
-- residual, relu and pool (which pooling windows a ConvNet joins); ResNet-18 and smallcnn with the
-- fusion on and off give the same features, running statistics and parameter gradients bit for bit
-- on the CPU (which computes the fused ops as the unfused ops do), in both memory formats; a
-- mixed-dtype residual falls back to the unfused ops
local tap = require "tap"
local vr = require "visreg"
local nn = vr.nn
local F = nn.functional

local function maxdiff(a, b)
  if a:shape_str() ~= b:shape_str() then return math.huge end
  return (a:to("f64") - b:to("f64")):abs():max():item()
end

tap.eq(nn.fusion.bn_act, true, "nn.fusion.bn_act is on by default (the variant bn_act=fused)")

-- the kernel variants (vr_set_variant): known names and values are taken, others refused by name
local ffi = require "ffi"
local C = require("visreg.core").C
tap.eq(C.vr_set_variant("conv", "legacy"), 0, "vr_set_variant conv=legacy")
tap.eq(ffi.string(C.vr_variant("conv")), "legacy", "vr_variant reads it back")
tap.ok(C.vr_set_variant("conv", "nope") ~= 0 and ffi.string(C.vr_last_error()):find("cudnn, legacy, im2col", 1, true),
  "an unknown value is refused, naming the values")
tap.ok(C.vr_set_variants("conv=cudnn,foo=1") ~= 0 and ffi.string(C.vr_last_error()):find("got 'foo'", 1, true),
  "an unknown name is refused")
tap.eq(ffi.string(C.vr_variant("conv")), "cudnn", "conv back to its default")

-- F.batch_norm with residual and relu against the three ops
vr.manual_seed(3)
local x, r = vr.randn(4, 3, 5, 5), vr.randn(4, 3, 5, 5)
local w, b = vr.randn(3):requires_grad_(), vr.randn(3)
local y = F.batch_norm(x, nil, nil, w, b, true, 0.1, 1e-5, r, true)
local y0 = (F.batch_norm(x, nil, nil, w, b, true, 0.1, 1e-5) + r):relu()
tap.eq(maxdiff(y, y0), 0, "F.batch_norm(..., residual, relu) equals batch_norm, add, relu")
tap.eq(y:grad_fn(), "batch_norm_act", "one fused node")
tap.raises(function() return F.batch_norm(x, nil, nil, w, b, true, 0.1, 1e-5, vr.randn(4, 3, 5, 4), true) end,
  { "vr_batch_norm_act", "residual: expected x's shape" }, "a residual of another shape is refused by name")

-- F.batch_norm's pool: max_pool2d(relu(batch_norm(x))) as one node, the two ops' values
local xp = vr.randn(4, 3, 9, 8)
local yp = F.batch_norm(xp, nil, nil, w, b, true, 0.1, 1e-5, nil, true, 2)
tap.eq(yp:grad_fn(), "batch_norm_act_pool", "F.batch_norm(..., relu, pool): one fused node")
tap.eq(maxdiff(yp, F.max_pool2d(F.batch_norm(xp, nil, nil, w, b, true, 0.1, 1e-5, nil, true), 2)), 0,
  "F.batch_norm(..., relu, pool) equals batch_norm, relu, max_pool2d")
tap.raises(function() return F.batch_norm(xp, nil, nil, w, b, true, 0.1, 1e-5, xp, true, 2) end,
  { "batch_norm", "no residual with pool" }, "pool with a residual is refused")

-- a ConvNet joins BatchNorm2d, ReLU and a MaxPool2d whose stride is its window; other pools stay apart
local function tail_node(pool)
  local m = nn.ConvNet():add(nn.BatchNorm2d(3)):add(nn.ReLU()):add(pool)
  return m(xp):grad_fn()
end
tap.eq(tail_node(nn.MaxPool2d(2)), "batch_norm_act_pool", "ConvNet: bn, relu, MaxPool2d(2) as one node")
tap.eq(tail_node(nn.MaxPool2d({ 2, 3 })), "batch_norm_act_pool", "ConvNet: a 2 x 3 window too")
tap.eq(tail_node(nn.MaxPool2d(3, { stride = 2 })), "max_pool2d", "ConvNet: overlapping windows are pooled apart")
tap.eq(tail_node(nn.MaxPool2d(2, { padding = 1 })), "max_pool2d", "ConvNet: padded windows are pooled apart")

-- whole models, fused against unfused, with the same weights and input
local function run(build, fused, fmt, input)
  nn.fusion.bn_act = fused
  vr.manual_seed(7)
  local m = build()
  if fmt then m:to_memory_format(fmt) end
  m:train()
  local f = m(input)
  f:sum():backward()
  local grads, stats = {}, {}
  for _, e in ipairs(m:named_parameters()) do grads[#grads + 1] = e[2]:grad() end
  for name, t in pairs(m:state_dict()) do if name:find("running") then stats[name] = t end end
  return f, grads, stats
end

local function compare(build, what, fmt, input)
  local fa, ga, sa = run(build, true, fmt, input)
  local fb, gb, sb = run(build, false, fmt, input)
  tap.eq(maxdiff(fa, fb), 0, what .. ": same features")
  local worst = 0
  for i = 1, #ga do worst = math.max(worst, maxdiff(ga[i], gb[i])) end
  tap.eq(worst, 0, what .. ": same parameter gradients (" .. #ga .. " tensors)")
  local sworst = 0
  for name, t in pairs(sa) do sworst = math.max(sworst, maxdiff(t, sb[name])) end
  tap.eq(sworst, 0, what .. ": same running statistics")
end

local saved = nn.fusion.bn_act
local img = vr.randn(4, 1, 28, 28)
compare(function() return nn.resnet18 { in_channels = 1, stem = "cifar", width = 8 } end, "resnet18", nil, img)
compare(function() return nn.resnet18 { in_channels = 1, stem = "cifar", width = 8 } end, "resnet18 channels_last",
  "channels_last", img)
compare(function() return nn.smallcnn { in_channels = 1, width = 8, pool = 2 } end, "smallcnn", nil, img)

-- under bf16 autocast the fused and unfused models agree to bf16's precision
nn.fusion.bn_act = true
vr.manual_seed(7)
local m = nn.resnet18 { in_channels = 1, stem = "cifar", width = 8 }
local fa = vr.autocast("bf16", function() return m(img) end)
nn.fusion.bn_act = false
local fb = vr.autocast("bf16", function() return m(img) end)
tap.ok(maxdiff(fa, fb) < 0.1 * math.max(1, fb:abs():max():item()), "bf16 autocast: fused and unfused features agree",
  maxdiff(fa, fb))

-- a residual of another dtype (autocast meeting f32) takes the unfused path
nn.fusion.bn_act = true
local bn = nn.BatchNorm2d(3)
local yb = vr.autocast("bf16", function() return bn(x:to("bf16"), r, true) end)
tap.eq(yb:dtype(), "f32", "under autocast, bf16 batch norm + f32 residual widens, as the add does")
nn.fusion.bn_act = saved
tap.done()
