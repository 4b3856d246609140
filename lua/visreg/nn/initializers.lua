-- visreg.nn.initializers (nn.init): PyTorch's initialisations, drawn from the Philox default
-- generator (vr.manual_seed) or opts.generator. Each writes into t in place and returns t.
local tensor = require "visreg.tensor"
local random = require "visreg.random"
local util = require "visreg.util"

local I = {}

local function fill_from(t, draw)
  tensor.no_grad(function() t:copy_(draw) end)
  return t
end

local function like(t, g) return { dtype = t:dtype(), device = t:device(), generator = g } end

function I.uniform_(t, a, b, g)
  local o = like(t, g)
  o.low, o.high = a or 0, b or 1
  return fill_from(t, random.rand(t:shape(), o))
end
function I.normal_(t, mean, std, g)
  local o = like(t, g)
  o.mean, o.std = mean or 0, std or 1
  return fill_from(t, random.randn(t:shape(), o))
end
-- normal clamped to [a, b] (in std units when a, b are not given: +-2 std), as timm's trunc_normal_
function I.trunc_normal_(t, mean, std, a, b, g)
  mean, std = mean or 0, std or 1
  local o = like(t, g)
  o.mean, o.std = mean, std
  local x = random.randn(t:shape(), o):clamp(a or (mean - 2 * std), b or (mean + 2 * std))
  return fill_from(t, x)
end
function I.constant_(t, v) tensor.no_grad(function() t:fill_(v) end); return t end
function I.zeros_(t) return I.constant_(t, 0) end
function I.ones_(t) return I.constant_(t, 1) end

function I.fans(t)
  local s = t:shape()
  if #s < 2 then util.error("init: fan in and fan out need at least 2 dims, got %d", #s) end
  local rf = 1
  for i = 3, #s do rf = rf * s[i] end
  return s[2] * rf, s[1] * rf
end

function I.gain(nonlinearity, a)
  if nonlinearity == "relu" then return math.sqrt(2) end
  if nonlinearity == "leaky_relu" then return math.sqrt(2 / (1 + (a or 0.01) ^ 2)) end
  if nonlinearity == "tanh" then return 5 / 3 end
  return 1
end

-- kaiming_uniform_(t, {a=0, mode="fan_in", nonlinearity="leaky_relu"}); PyTorch's Linear and Conv
-- weights use a = sqrt(5)
function I.kaiming_uniform_(t, o)
  o = o or {}
  local fan_in, fan_out = I.fans(t)
  local fan = o.mode == "fan_out" and fan_out or fan_in
  local gain = I.gain(o.nonlinearity or "leaky_relu", o.a or 0)
  local bound = gain * math.sqrt(3 / fan)
  return I.uniform_(t, -bound, bound, o.generator)
end
function I.kaiming_normal_(t, o)
  o = o or {}
  local fan_in, fan_out = I.fans(t)
  local fan = o.mode == "fan_out" and fan_out or fan_in
  local std = I.gain(o.nonlinearity or "leaky_relu", o.a or 0) / math.sqrt(fan)
  return I.normal_(t, 0, std, o.generator)
end
function I.xavier_uniform_(t, gain)
  local fan_in, fan_out = I.fans(t)
  local bound = (gain or 1) * math.sqrt(6 / (fan_in + fan_out))
  return I.uniform_(t, -bound, bound)
end

-- PyTorch's default for Linear and Conv layers: weight kaiming_uniform(a=sqrt 5), bias U(+-1/sqrt(fan_in))
function I.default_linear_(weight, bias)
  I.kaiming_uniform_(weight, { a = math.sqrt(5) })
  if bias ~= nil then
    local fan_in = I.fans(weight)
    local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
    I.uniform_(bias, -bound, bound)
  end
end

return I
