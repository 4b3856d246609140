-- visreg.nn.layers: the layers, PyTorch-shaped (constructors take the sizes first and an options
-- table last: dtype, device, bias, ...), initialised as PyTorch does.
--
-- Channels-last (as PyTorch's memory_format=torch.channels_last, switched per model with
-- Module:to_memory_format): Conv2d, BatchNorm2d, the pooling layers and Flatten take a
-- channels_last option (and _set_memory_format), with which their 4-D activations are logical
-- [N, H, W, C] tensors; every other op is layout-agnostic. Parameters keep their usual shapes, so
-- checkpoints do not depend on the layout. A module with layout_agnostic = true works unchanged on
-- either layout; any other module (without _set_memory_format) refuses channels_last.
local ffi = require "ffi"
local C = require("visreg.core").C
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local F = require "visreg.functional"
local I = require "visreg.nn.initializers"
local class = require("visreg.nn.module").class
local Module = require("visreg.nn.module").Module

local L = {}

local function topts(o) return { dtype = o and o.dtype or "f32", device = o and o.device or "cpu" } end
local function pos_int(v, what, who)
  if type(v) ~= "number" or v < 1 or v % 1 ~= 0 then util.error("%s: %s: expected a positive integer, got %s", who, what, tostring(v)) end
  return v
end

---------------------------------------------------------------- Identity, Linear
local Identity = class("Identity", Module)
L.Identity = Identity
Identity.layout_agnostic = true
function Identity:__init() Module.__init(self) end
function Identity:forward(x) return x end

local Linear = class("Linear", Module)
L.Linear = Linear
Linear.layout_agnostic = true -- on features (after Flatten)
-- Linear(in_features, out_features, {bias=true, dtype=, device=})
function Linear:__init(nin, nout, o)
  Module.__init(self)
  o = o or {}
  self.in_features = pos_int(nin, "in_features", "nn.Linear")
  self.out_features = pos_int(nout, "out_features", "nn.Linear")
  local w = self:register_parameter("weight", tensor.empty({ nout, nin }, topts(o)))
  local b = nil
  if o.bias ~= false then b = self:register_parameter("bias", tensor.empty({ nout }, topts(o))) end
  I.default_linear_(w, b)
end
function Linear:forward(x) return F.linear(x, self.weight, self.bias) end
function Linear:extra_repr()
  return string.format("in_features=%d, out_features=%d, bias=%s", self.in_features, self.out_features, tostring(self.bias ~= nil))
end

---------------------------------------------------------------- Conv2d
local Conv2d = class("Conv2d", Module)
L.Conv2d = Conv2d
-- Conv2d(in_channels, out_channels, kernel_size, {stride=1, padding=0, dilation=1, groups=1, bias=true,
-- channels_last=false}). channels_last: x [N, H, W, C] -> [N, Ho, Wo, Cout]; the weight stays
-- [Cout, C/groups, kh, kw] (the same checkpoints) and the convolution gets the view
-- weight:permute(0, 2, 3, 1) (autocast casts it to one contiguous bf16 tensor; in f32 the op makes
-- it contiguous; its gradient comes back through the permute in the weight's own shape).
function Conv2d:__init(cin, cout, k, o)
  Module.__init(self)
  o = o or {}
  self.in_channels = pos_int(cin, "in_channels", "nn.Conv2d")
  self.out_channels = pos_int(cout, "out_channels", "nn.Conv2d")
  local kh, kw = F.pair(k, "kernel_size")
  self.kernel_size = { kh, kw }
  self.stride, self.padding, self.dilation, self.groups = o.stride or 1, o.padding or 0, o.dilation or 1, o.groups or 1
  if cin % self.groups ~= 0 or cout % self.groups ~= 0 then
    util.error("nn.Conv2d: groups: expected a divisor of in_channels %d and out_channels %d, got %d", cin, cout, self.groups)
  end
  self.channels_last = o.channels_last and true or false
  local w = self:register_parameter("weight", tensor.empty({ cout, cin / self.groups, kh, kw }, topts(o)))
  local b = nil
  if o.bias ~= false then b = self:register_parameter("bias", tensor.empty({ cout }, topts(o))) end
  I.default_linear_(w, b)
end
function Conv2d:forward(x)
  local cl = self.channels_last
  return F.conv2d(x, cl and self.weight:permute(0, 2, 3, 1) or self.weight, self.bias, { stride = self.stride,
    padding = self.padding, dilation = self.dilation, groups = self.groups, channels_last = cl })
end
function Conv2d:_set_memory_format(cl) self.channels_last = cl end
function Conv2d:extra_repr()
  return string.format("%d, %d, kernel_size=%dx%d, stride=%s, padding=%s%s%s", self.in_channels, self.out_channels,
    self.kernel_size[1], self.kernel_size[2], tostring(self.stride), tostring(self.padding), self.bias and "" or ", bias=false",
    self.channels_last and ", channels_last" or "")
end

---------------------------------------------------------------- normalisation
local BatchNorm = class("BatchNorm", Module)
L.BatchNorm = BatchNorm
-- BatchNorm(num_features, {eps=1e-5, momentum=0.1, affine=true, track_running_stats=true})
function BatchNorm:__init(n, o)
  Module.__init(self)
  o = o or {}
  self.num_features = pos_int(n, "num_features", self.__name)
  self.eps, self.momentum = o.eps or 1e-5, o.momentum or 0.1
  self.is_norm = true
  if o.affine ~= false then
    self:register_parameter("weight", tensor.ones({ n }, topts(o)))
    self:register_parameter("bias", tensor.zeros({ n }, topts(o)))
  end
  if o.track_running_stats ~= false then
    self:register_buffer("running_mean", tensor.zeros({ n }, topts(o)))
    self:register_buffer("running_var", tensor.ones({ n }, topts(o)))
  end
end
-- forward(x [, residual, relu, pool]): with a residual (x's shape) and/or relu = true,
-- act(bn(x) + residual) in one fused op (a ResNet block's bn-ReLU and bn-add-ReLU; see L.fusion);
-- pool (a window): max_pool2d(act(bn(x)), pool) at the window's stride, fused too
function BatchNorm:forward(x, residual, relu, pool)
  local expect = self.ndim_expected
  if expect and x:dim() ~= expect[1] and x:dim() ~= expect[2] then
    util.error("%s: expected a %d-dim or %d-dim input, got %d dims", self.__name, expect[1], expect[2], x:dim())
  end
  -- batch statistics in training (updating the running ones) and when there are no running ones
  local batch_stats = self.training or self.running_mean == nil
  return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, batch_stats, self.momentum, self.eps,
    residual, relu, pool)
end
function BatchNorm:extra_repr()
  return string.format("%d, eps=%g, momentum=%g", self.num_features, self.eps, self.momentum)
end
L.BatchNorm1d = class("BatchNorm1d", BatchNorm)
L.BatchNorm1d.ndim_expected = { 2, 3 }
L.BatchNorm1d.layout_agnostic = true -- on features (after Flatten)
-- BatchNorm2d(num_features, {..., channels_last=false}). channels_last: x [N, H, W, C] viewed as
-- [N*H*W, C] (the same statistics over N, H, W per channel), normalised, viewed back.
local BatchNorm2d = class("BatchNorm2d", BatchNorm)
L.BatchNorm2d = BatchNorm2d
BatchNorm2d.ndim_expected = { 4, 4 }
function BatchNorm2d:__init(n, o)
  BatchNorm.__init(self, n, o)
  self.channels_last = o and o.channels_last and true or false
end
function BatchNorm2d:forward(x, residual, relu, pool)
  if not self.channels_last then return BatchNorm.forward(self, x, residual, relu, pool) end
  if pool then util.error("BatchNorm2d (channels_last): pool is fused only in the NCHW layout") end
  if x:dim() ~= 4 or x:size(3) ~= self.num_features then
    util.error("BatchNorm2d (channels_last): expected an input [N, H, W, %d], got %s", self.num_features, x:shape_str())
  end
  local N, H, W, C = x:size(0), x:size(1), x:size(2), x:size(3)
  local batch_stats = self.training or self.running_mean == nil
  local y = F.batch_norm(x:reshape(N * H * W, C), self.running_mean, self.running_var, self.weight, self.bias, batch_stats,
    self.momentum, self.eps, residual and residual:reshape(N * H * W, C), relu)
  return y:view(N, H, W, C)
end
function BatchNorm2d:_set_memory_format(cl) self.channels_last = cl end
function BatchNorm2d:extra_repr()
  return BatchNorm.extra_repr(self) .. (self.channels_last and ", channels_last" or "")
end

local LayerNorm = class("LayerNorm", Module)
L.LayerNorm = LayerNorm
-- LayerNorm(normalized_shape, {eps=1e-5, elementwise_affine=true})
function LayerNorm:__init(shape, o)
  Module.__init(self)
  o = o or {}
  if type(shape) == "number" then shape = { shape } end
  self.normalized_shape = shape
  self.eps = o.eps or 1e-5
  self.is_norm = true
  self.layout_agnostic = true -- on features (after Flatten)
  if o.elementwise_affine ~= false then
    self:register_parameter("weight", tensor.ones(shape, topts(o)))
    self:register_parameter("bias", tensor.zeros(shape, topts(o)))
  end
end
function LayerNorm:forward(x)
  return F.layer_norm(x, #self.normalized_shape, self.weight, self.bias, self.eps)
end
function LayerNorm:extra_repr() return "[" .. table.concat(self.normalized_shape, ", ") .. "], eps=" .. self.eps end

---------------------------------------------------------------- activations, pooling, reshaping
local function stateless(name, fwd, repr, agnostic)
  local cls = class(name, Module)
  function cls:__init(...)
    Module.__init(self)
    self.args = { ... }
  end
  cls.forward = fwd
  if repr then cls.extra_repr = repr end
  cls.layout_agnostic = agnostic
  L[name] = cls
  return cls
end
stateless("ReLU", function(_, x) return x:relu() end, nil, true)
stateless("GELU", function(self, x) return F.gelu(x, self.args[1] and self.args[1].approximate) end, nil, true)
stateless("Tanh", function(_, x) return x:tanh() end, nil, true)
stateless("Sigmoid", function(_, x) return x:sigmoid() end, nil, true)

-- the layers below take channels_last in their last options table (or from to_memory_format)
local function set_memory_format(self, cl) self.channels_last = cl end
local function layout_repr(fn)
  return function(self)
    local base = fn(self)
    if not self.channels_last then return base end
    return base == "" and "channels_last" or base .. ", channels_last"
  end
end
local function spatial(name, fwd, repr, opts_at)
  local cls = stateless(name, fwd, layout_repr(repr))
  function cls:__init(...)
    Module.__init(self)
    self.args = { ... }
    local o = self.args[opts_at]
    self.channels_last = type(o) == "table" and o.channels_last and true or false
  end
  cls._set_memory_format = set_memory_format
  return cls
end
-- [N, H, W, C] -> the NCHW op -> [N, H', W', C] (pooling off the channels-last fast path)
local function via_nchw(x, fn)
  if x:dim() ~= 4 then util.error("channels_last pooling: expected an input [N, H, W, C], got %s", x:shape_str()) end
  return fn(x:permute(0, 3, 1, 2)):permute(0, 2, 3, 1):contiguous()
end

-- MaxPool2d(kernel_size, {stride=kernel_size, padding=0, channels_last=false})
spatial("MaxPool2d", function(self, x)
  if self.channels_last then return via_nchw(x, function(t) return F.max_pool2d(t, self.args[1], self.args[2]) end) end
  return F.max_pool2d(x, self.args[1], self.args[2])
end, function(self) return "kernel_size=" .. tostring(self.args[1]) end, 2)
spatial("AvgPool2d", function(self, x)
  if self.channels_last then return via_nchw(x, function(t) return F.avg_pool2d(t, self.args[1], self.args[2]) end) end
  return F.avg_pool2d(x, self.args[1], self.args[2])
end, function(self) return "kernel_size=" .. tostring(self.args[1]) end, 2)
-- AdaptiveAvgPool2d(output_size, {channels_last=false}); channels_last with output size 1: the mean
-- over H and W, [N, 1, 1, C] (Flatten makes it [N, C] as from [N, C, 1, 1])
spatial("AdaptiveAvgPool2d", function(self, x)
  local size = self.args[1] or 1
  if self.channels_last then
    local h, w = F.pair(size, "output_size")
    if h == 1 and w == 1 then
      if x:dim() ~= 4 then util.error("AdaptiveAvgPool2d (channels_last): expected an input [N, H, W, C], got %s", x:shape_str()) end
      return x:mean({ 1, 2 }, true)
    end
    return via_nchw(x, function(t) return F.adaptive_avg_pool2d(t, size) end)
  end
  return F.adaptive_avg_pool2d(x, size)
end, function(self) return "output_size=" .. tostring(self.args[1] or 1) end, 2)
-- Flatten(start_dim=1, end_dim=-1, {channels_last=false}); channels_last: a 4-D input [N, H, W, C]
-- is flattened as the [N, C, H, W] it stands for, so the features keep PyTorch's order
spatial("Flatten", function(self, x)
  if self.channels_last and x:dim() == 4 then x = x:permute(0, 3, 1, 2) end
  return x:flatten(self.args[1] or 1, self.args[2] or -1)
end, function() return "" end, 3)

local Dropout = class("Dropout", Module)
L.Dropout = Dropout
Dropout.layout_agnostic = true
function Dropout:__init(p, o)
  Module.__init(self)
  self.p = p or 0.5
  self.generator = o and o.generator
end
function Dropout:forward(x)
  if not self.training or self.p == 0 then return x end
  return F.dropout(x, self.p, true, self.generator)
end
function Dropout:extra_repr() return "p=" .. self.p end

---------------------------------------------------------------- containers
local Sequential = class("Sequential", Module)
L.Sequential = Sequential
Sequential.layout_agnostic = true -- its children decide
-- Sequential(m1, m2, ...) or Sequential{m1, m2, ...}
function Sequential:__init(...)
  Module.__init(self)
  local mods = { ... }
  if #mods == 1 and getmetatable(mods[1]) == nil and type(mods[1]) == "table" then mods = mods[1] end
  for i, m in ipairs(mods) do
    if type(m) ~= "table" or not m.forward then util.error("nn.Sequential: argument %d: expected a module, got %s", i, type(m)) end
    self:add_module(tostring(i - 1), m)
  end
end
function Sequential:add(m)
  self:add_module(tostring(#self._module_names), m)
  return self
end
function Sequential:forward(x)
  for _, n in ipairs(self._module_names) do x = self[n]:forward(x) end
  return x
end
function Sequential:len() return #self._module_names end
function Sequential:get(i) return self[tostring(i)] end

-- ConvNet: a Sequential of image layers taking [N, C, H, W] images in either layout: in
-- channels_last its forward permutes the input to [N, H, W, C] once at the entry (the models
-- smallcnn and resnet18 are ConvNets). Parameter names are a Sequential's.
local ConvNet = class("ConvNet", Sequential)
L.ConvNet = ConvNet
function ConvNet:__init(...)
  Sequential.__init(self, ...)
  self.channels_last = false
end
-- L.fusion.bn_act (default true; the variant bn_act=unfused turns it off, to compare): a BatchNorm2d
-- followed by a ReLU, here and in nn.BasicBlock, runs as one fused op (F.batch_norm's relu), one
-- pass over the activations instead of three on the GPU; followed by a MaxPool2d whose stride is its
-- window (no padding) too, the pooling joins it (F.batch_norm's pool: on the CPU the full-size
-- output is never written). The results are the same ops'.
L.fusion = { bn_act = ffi.string(C.vr_variant("bn_act")) == "fused" }

-- the window of a MaxPool2d that F.batch_norm's pool can take (stride = window, no padding), or nil
local function fusable_pool(m)
  if not m or m.__name ~= "MaxPool2d" or m.channels_last then return nil end
  local k, o = m.args[1], m.args[2] or {}
  local kh, kw = F.pair(k, "kernel_size")
  local sh, sw = F.pair(o.stride or k, "stride")
  local ph, pw = F.pair(o.padding or 0, "padding")
  if sh == kh and sw == kw and ph == 0 and pw == 0 then return { kh, kw } end
  return nil
end

function ConvNet:forward(x)
  if self.channels_last then
    if x:dim() ~= 4 then util.error("ConvNet (channels_last): expected images [N, C, H, W], got %s", x:shape_str()) end
    x = x:permute(0, 2, 3, 1):contiguous()
  end
  local names, k = self._module_names, 1
  while k <= #names do
    local m, nxt = self[names[k]], self[names[k + 1]]
    if L.fusion.bn_act and nxt and m.__name == "BatchNorm2d" and nxt.__name == "ReLU" then
      local pool = not self.channels_last and names[k + 2] and fusable_pool(self[names[k + 2]])
      x = m:forward(x, nil, true, pool or nil)
      k = k + (pool and 3 or 2)
    else
      x = m:forward(x)
      k = k + 1
    end
  end
  return x
end
ConvNet._set_memory_format = set_memory_format
function ConvNet:extra_repr() return self.channels_last and "channels_last" or "" end

return L
