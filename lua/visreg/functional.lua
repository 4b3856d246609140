-- visreg.functional: the neural-network ops with PyTorch-like options, over the C front-ends.
-- Modules (visreg.nn) call these; recipes and scripts may too.
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local C = core.C
local new, outp = tensor.new, tensor.outp

local F = {}

local function pair(v, what)
  if v == nil then return nil end
  if type(v) == "number" then return v, v end
  if type(v) == "table" and #v == 2 then return v[1], v[2] end
  util.error("%s: expected a number or a pair {h, w}, got %s", what, type(v))
end
F.pair = pair

function F.linear(x, weight, bias)
  return new(C.vr_linear(x, weight, bias, outp))
end

-- conv2d(x, weight, bias, {stride=1, padding=0, dilation=1, groups=1, channels_last=false})
-- channels_last: x [N, H, W, C] and weight [Cout, kh, kw, C/groups] give y [N, Ho, Wo, Cout]
-- (vr_conv2d_nhwc: cuDNN's fast layout on the GPU); otherwise NCHW
function F.conv2d(x, weight, bias, o)
  o = o or {}
  local sh, sw = pair(o.stride or 1, "stride")
  local ph, pw = pair(o.padding or 0, "padding")
  local dh, dw = pair(o.dilation or 1, "dilation")
  local conv = o.channels_last and C.vr_conv2d_nhwc or C.vr_conv2d
  return new(conv(x, weight, bias, sh, sw, ph, pw, dh, dw, o.groups or 1, outp))
end

function F.max_pool2d(x, kernel, o)
  o = o or {}
  local kh, kw = pair(kernel, "kernel_size")
  local sh, sw = pair(o.stride or kernel, "stride")
  local ph, pw = pair(o.padding or 0, "padding")
  return new(C.vr_max_pool2d(x, kh, kw, sh, sw, ph, pw, outp))
end

function F.avg_pool2d(x, kernel, o)
  o = o or {}
  local kh, kw = pair(kernel, "kernel_size")
  local sh, sw = pair(o.stride or kernel, "stride")
  local ph, pw = pair(o.padding or 0, "padding")
  return new(C.vr_avg_pool2d(x, kh, kw, sh, sw, ph, pw, o.count_include_pad == false and 0 or 1, outp))
end

function F.adaptive_avg_pool2d(x, size)
  local h, w = pair(size or 1, "output_size")
  return new(C.vr_adaptive_avg_pool2d(x, h, w, outp))
end

-- batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, residual, relu, pool):
-- with a residual (x's shape) and/or relu = true, act(bn(x) + residual) as one fused op; with pool
-- (a window, a number or {h, w}; no residual), max_pool2d(act(bn(x)), pool) at the window's own
-- stride, fused too
function F.batch_norm(x, rm, rv, weight, bias, training, momentum, eps, residual, relu, pool)
  if pool then
    if residual then util.error("batch_norm: expected no residual with pool") end
    local ph, pw = pair(pool, "pool")
    return new(C.vr_batch_norm_act_pool(x, weight, bias, rm, rv, training and 1 or 0, momentum or 0.1, eps or 1e-5,
      relu and 1 or 0, ph, pw, outp))
  end
  if residual or relu then
    return new(C.vr_batch_norm_act(x, weight, bias, rm, rv, training and 1 or 0, momentum or 0.1, eps or 1e-5, residual,
      relu and 1 or 0, outp))
  end
  return new(C.vr_batch_norm(x, weight, bias, rm, rv, training and 1 or 0, momentum or 0.1, eps or 1e-5, outp))
end

function F.layer_norm(x, n_norm_dims, weight, bias, eps)
  return new(C.vr_layer_norm(x, n_norm_dims or 1, weight, bias, eps or 1e-5, outp))
end

function F.relu(x) return new(C.vr_relu(x, outp)) end
function F.gelu(x, approximate) return new(C.vr_gelu(x, approximate == "tanh" and 1 or 0, outp)) end
function F.softmax(x, dim) return new(C.vr_softmax(x, dim or -1, outp)) end
function F.log_softmax(x, dim) return new(C.vr_log_softmax(x, dim or -1, outp)) end

function F.dropout(x, p, training, generator)
  local g = (generator or require("visreg.random").default()).handle
  return new(C.vr_dropout(x, p or 0.5, training == false and 0 or 1, g, outp))
end

-- mean cross-entropy of logits N x C against i64 class indices
function F.cross_entropy(logits, target, label_smoothing)
  return new(C.vr_cross_entropy(logits, target, label_smoothing or 0, outp))
end

-- x / max(||x||_dim, eps)
function F.normalize(x, dim, eps)
  local n = x:norm(2, dim or -1, true):clamp(eps or 1e-12)
  return x / n
end

return F
