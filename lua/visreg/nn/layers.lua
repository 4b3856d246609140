-- visreg.nn.layers: the layers, PyTorch-shaped (constructors take the sizes first and an options
-- table last: dtype, device, bias, ...), initialised as PyTorch does.
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
function Identity:__init() Module.__init(self) end
function Identity:forward(x) return x end

local Linear = class("Linear", Module)
L.Linear = Linear
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
-- Conv2d(in_channels, out_channels, kernel_size, {stride=1, padding=0, dilation=1, groups=1, bias=true})
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
  local w = self:register_parameter("weight", tensor.empty({ cout, cin / self.groups, kh, kw }, topts(o)))
  local b = nil
  if o.bias ~= false then b = self:register_parameter("bias", tensor.empty({ cout }, topts(o))) end
  I.default_linear_(w, b)
end
function Conv2d:forward(x)
  return F.conv2d(x, self.weight, self.bias, { stride = self.stride, padding = self.padding, dilation = self.dilation,
    groups = self.groups })
end
function Conv2d:extra_repr()
  return string.format("%d, %d, kernel_size=%dx%d, stride=%s, padding=%s%s", self.in_channels, self.out_channels,
    self.kernel_size[1], self.kernel_size[2], tostring(self.stride), tostring(self.padding), self.bias and "" or ", bias=false")
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
function BatchNorm:forward(x)
  local expect = self.ndim_expected
  if expect and x:dim() ~= expect[1] and x:dim() ~= expect[2] then
    util.error("%s: expected a %d-dim or %d-dim input, got %d dims", self.__name, expect[1], expect[2], x:dim())
  end
  -- batch statistics in training (updating the running ones) and when there are no running ones
  local batch_stats = self.training or self.running_mean == nil
  return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, batch_stats, self.momentum, self.eps)
end
function BatchNorm:extra_repr()
  return string.format("%d, eps=%g, momentum=%g", self.num_features, self.eps, self.momentum)
end
L.BatchNorm1d = class("BatchNorm1d", BatchNorm)
L.BatchNorm1d.ndim_expected = { 2, 3 }
L.BatchNorm2d = class("BatchNorm2d", BatchNorm)
L.BatchNorm2d.ndim_expected = { 4, 4 }

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
local function stateless(name, fwd, repr)
  local cls = class(name, Module)
  function cls:__init(...)
    Module.__init(self)
    self.args = { ... }
  end
  cls.forward = fwd
  if repr then cls.extra_repr = repr end
  L[name] = cls
  return cls
end
stateless("ReLU", function(_, x) return x:relu() end)
stateless("GELU", function(self, x) return F.gelu(x, self.args[1] and self.args[1].approximate) end)
stateless("Tanh", function(_, x) return x:tanh() end)
stateless("Sigmoid", function(_, x) return x:sigmoid() end)

-- MaxPool2d(kernel_size, {stride=kernel_size, padding=0})
stateless("MaxPool2d", function(self, x) return F.max_pool2d(x, self.args[1], self.args[2]) end,
  function(self) return "kernel_size=" .. tostring(self.args[1]) end)
stateless("AvgPool2d", function(self, x) return F.avg_pool2d(x, self.args[1], self.args[2]) end,
  function(self) return "kernel_size=" .. tostring(self.args[1]) end)
-- AdaptiveAvgPool2d(output_size)
stateless("AdaptiveAvgPool2d", function(self, x) return F.adaptive_avg_pool2d(x, self.args[1] or 1) end,
  function(self) return "output_size=" .. tostring(self.args[1] or 1) end)
-- Flatten(start_dim=1, end_dim=-1)
stateless("Flatten", function(self, x) return x:flatten(self.args[1] or 1, self.args[2] or -1) end)

local Dropout = class("Dropout", Module)
L.Dropout = Dropout
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

return L
