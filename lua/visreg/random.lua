-- visreg.random: Philox generators (keyed by seed and stream; identical on every device) and the
-- random tensor constructors. The default generator (vr.manual_seed) feeds parameter
-- initialisation and anything that is not given its own generator.
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local C = core.C
local check = core.check
local new = tensor.new

local M = {}
local G = {}
G.__index = G

local genp = ffi.new("vr_generator *[1]")
local outp = tensor.outp

-- Generator(seed, stream)
function M.Generator(seed, stream)
  check(C.vr_generator_new(seed or 0, stream or 0, genp))
  local g = ffi.gc(genp[0], C.vr_generator_free)
  genp[0] = nil
  return setmetatable({ handle = g }, G)
end
function G:seed() return tonumber(C.vr_generator_seed(self.handle)) end
function G:stream() return tonumber(C.vr_generator_stream(self.handle)) end
function G:offset() return tonumber(C.vr_generator_offset(self.handle)) end
function G:state() return { seed = self:seed(), stream = self:stream(), offset = self:offset() } end
function G:set_state(s)
  C.vr_generator_set_state(self.handle, s.seed, s.stream or 0, s.offset or 0)
  return self
end
function G:__tostring()
  return string.format("Generator(seed=%d, stream=%d, offset=%d)", self:seed(), self:stream(), self:offset())
end

local default = M.Generator(0, 0)
function M.default() return default end
function M.manual_seed(seed, stream)
  default:set_state { seed = seed, stream = stream or 0, offset = 0 }
  return default
end

local function gen(o) return (o and o.generator or default).handle end

-- rand(shape..., {low=, high=, dtype=, device=, generator=})
function M.rand(...)
  local shape, o = tensor.shape_args(...)
  local n, s = tensor.int64s(shape)
  return new(C.vr_rand_uniform(gen(o), n, s, o and o.low or 0, o and o.high or 1, core.dtype(o and o.dtype),
    core.device(o and o.device), outp))
end
function M.randn(...)
  local shape, o = tensor.shape_args(...)
  local n, s = tensor.int64s(shape)
  return new(C.vr_rand_normal(gen(o), n, s, o and o.mean or 0, o and o.std or 1, core.dtype(o and o.dtype),
    core.device(o and o.device), outp))
end
-- randint(low, high, shape, opts): integers in [low, high)
function M.randint(low, high, shape, o)
  if type(shape) ~= "table" then util.error("randint: shape: expected a table, got %s", type(shape)) end
  local n, s = tensor.int64s(shape)
  return new(C.vr_rand_int(gen(o), n, s, low, high, core.dtype(o and o.dtype or "i64"), core.device(o and o.device), outp))
end
function M.randperm(n, o)
  return new(C.vr_randperm(gen(o), n, core.device(o and o.device), outp))
end

return M
