-- visreg: the toolkit's Lua face. `local vr = require "visreg"` gives tensors and their
-- constructors, and loads the submodules on first use: vr.nn, vr.loss, vr.optim, vr.schedule,
-- vr.data, vr.augment, vr.trainer, vr.probe, vr.checkpoint, vr.yaml, vr.linalg, vr.util, vr.doc (the
-- registry of documentation that the REPL's help reads).
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local random = require "visreg.random"
local util = require "visreg.util"
local ffi = require "ffi"
local C = core.C

local vr = {}

vr.C = C
vr.ffi = ffi
vr.version = ffi.string(C.vr_version())

-- tensors
for _, k in ipairs { "empty", "zeros", "ones", "full", "arange", "scalar", "tensor", "load_npy", "cat", "concat",
  "stack", "where", "no_grad", "enable_grad", "grad_enabled", "set_grad_enabled", "is_tensor", "autocast" } do
  vr[k] = tensor[k]
end
for _, k in ipairs { "Generator", "manual_seed", "rand", "randn", "randint", "randperm" } do vr[k] = random[k] end
vr.default_generator = random.default
function vr.set_gc_threshold(bytes) tensor.gc_threshold = bytes end

-- the C library's state
function vr.num_threads() return C.vr_num_threads() end
function vr.set_num_threads(n) C.vr_set_num_threads(n) end
function vr.cuda_available() return C.vr_cuda_available() ~= 0 end
function vr.cuda_compiled() return C.vr_cuda_compiled() ~= 0 end
function vr.cuda_device_name() return ffi.string(C.vr_cuda_device_name()) end
function vr.device(d) return core.device_names[tonumber(core.device(d))] end
-- the op profiler (core/profile.c; VISREG_PROFILE=1 turns it on for a whole command):
-- vr.profile(fn, ...) runs fn with it on and prints where the device and host time went
vr.profile = setmetatable({
  enable = function(on) C.vr_profile_enable(on == false and 0 or 1) end,
  reset = function() C.vr_profile_reset() end,
  report = function() C.vr_profile_report() end,
  -- calls and device ms counted since the reset for one row ("conv2d", "binary.add")
  calls = function(name, backward)
    local ms = ffi.new("double[1]")
    local n = C.vr_profile_calls(name, backward and 1 or 0, ms)
    return tonumber(n), ms[0]
  end,
}, { __call = function(self, fn, ...)
  local was = C.vr_profile_enabled()
  self.enable(true)
  self.reset()
  local res = { pcall(fn, ...) }
  self.report()
  C.vr_profile_enable(was)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end })
vr.now = core.now
vr.check_interrupt = core.check_interrupt
vr.last_error = core.last_error
vr.error = util.error

-- vr.recipe{...}: the recipe table, checked; vr.recipe.extend(base, overrides): a recipe built on a
-- base recipe file (see visreg.recipe)
vr.recipe = setmetatable({ extend = function(...) return require("visreg.recipe").extend(...) end },
  { __call = function(_, t) return require("visreg.recipe").define(t) end })

local lazy = { nn = "visreg.nn", loss = "visreg.loss", optim = "visreg.optim", schedule = "visreg.schedule",
  data = "visreg.data", augment = "visreg.augment", trainer = "visreg.trainer", probe = "visreg.probe",
  checkpoint = "visreg.checkpoint", util = "visreg.util", functional = "visreg.functional",
  recipes = "visreg.recipe", metrics = "visreg.metrics", yaml = "visreg.yaml", linalg = "visreg.linalg",
  doc = "visreg.doc" }
-- __fields: the names that exist without being loaded yet (the REPL completes them)
setmetatable(vr, {
  __fields = lazy,
  __index = function(t, k)
    local m = lazy[k]
    if m then
      local v = require(m)
      rawset(t, k, v)
      return v
    end
  end,
})

return vr
