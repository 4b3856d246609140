-- visreg.core: the C API through LuaJIT FFI (ffi.cdef of the generated cdef.lua, once), the
-- dtype and device names, and check(), which turns a failing status into a Lua error carrying
-- vr_last_error() and blaming the caller's file:line.
local ffi = require "ffi"
local util = require "visreg.util"

-- cdef.lua is generated at build time; where it did not travel (a copied tree), the header beside
-- the lua/ folder is read the same way tools/gen-cdef does (preprocessor lines dropped)
local function header_cdef()
  local dir = debug.getinfo(1, "S").source:match("^@(.*)/visreg/[^/]*$")
  local f = dir and io.open(dir .. "/../core/visreg.h", "rb")
  if not f then return nil end
  local lines = {}
  for line in f:lines() do
    if not line:match("^%s*#") then lines[#lines + 1] = line end
  end
  f:close()
  return table.concat(lines, "\n")
end
local ok, cdef = pcall(require, "visreg.cdef")
if not ok then
  cdef = header_cdef()
  if not cdef then
    error("visreg: lua/visreg/cdef.lua is missing; run make (it is generated from core/visreg.h)", 0)
  end
end
ffi.cdef(cdef)
-- the host's own functions (core/host.h), exported by bin/visreg
ffi.cdef [[
int vr_host_interrupted(void);
void vr_host_clear_interrupt(void);
int vr_host_isatty(int fd);
double vr_host_now(void);
]]

local C = ffi.C
local M = { C = C, ffi = ffi }

M.dtypes = { f32 = C.VR_F32, f64 = C.VR_F64, i32 = C.VR_I32, i64 = C.VR_I64, u8 = C.VR_U8, bf16 = C.VR_BF16 }
local aliases = { float32 = "f32", float = "f32", float64 = "f64", double = "f64", int32 = "i32", int = "i32",
  int64 = "i64", long = "i64", uint8 = "u8", byte = "u8", bool = "u8", bfloat16 = "bf16" }
M.dtype_names = { [0] = "f32", "f64", "i32", "i64", "u8", "bf16" }
-- the C element type of each dtype, for host buffers (bf16 as raw 16-bit words)
M.ctypes = { [0] = "float", "double", "int32_t", "int64_t", "uint8_t", "uint16_t" }

function M.dtype(d, what)
  if d == nil then return C.VR_F32 end
  if type(d) == "number" then return d end
  local name = aliases[d] or d
  local v = M.dtypes[name]
  if v == nil then
    util.error("%s: unknown dtype '%s' (expected one of f32, f64, i32, i64, u8, bf16)", what or "dtype", tostring(d))
  end
  return v
end

function M.device(d, what)
  if d == nil or d == "cpu" or d == 0 then return C.VR_CPU end
  if d == "cuda" or d == 1 or d == "gpu" then return C.VR_CUDA end
  if d == "auto" then return C.vr_cuda_available() ~= 0 and C.VR_CUDA or C.VR_CPU end
  util.error("%s: unknown device '%s' (expected cpu, cuda or auto)", what or "device", tostring(d))
end
M.device_names = { [0] = "cpu", "cuda" }

function M.last_error()
  return ffi.string(C.vr_last_error())
end

-- raises the C library's message at the caller's line when st is not VR_OK
function M.check(st)
  if st ~= 0 then util.error("%s", M.last_error()) end
end

function M.now() return C.vr_host_now() end

-- Long Lua loops call check_interrupt() between units of work: at a pending interrupt request
-- (Ctrl-C in the REPL, or under `visreg train`) it takes the request and raises "interrupted" at
-- the caller's line. is_interrupt(err) tells such an error (or a C call's VR_E_INTERRUPTED) apart.
function M.check_interrupt()
  if C.vr_interrupt_pending() ~= 0 then
    C.vr_interrupt_clear()
    util.error("interrupted")
  end
end
function M.is_interrupt(err)
  return type(err) == "string" and (err:find("interrupted$") or err:find(": interrupted[ (]")) ~= nil
end

return M
