-- visreg.dist: the ranks of a data-parallel job (core/dist.c). A process that mpirun or srun
-- started is one rank of the job; one started alone is rank 0 of 1, and every collective returns
-- its input. Every rank must call the collectives in the same order.
--
--   local dist = require "visreg.dist"
--   dist.init()                      -- joins the job (idempotent)
--   dist.rank(), dist.size(), dist.is_main()
--   dist.all_reduce_sum { t1, t2 }   -- in place, contiguous f32/f64 tensors
--   dist.all_gather(t [, dim])       -- the ranks' tensors concatenated along dim (0), rank 0 first
--   dist.broadcast(t, root), dist.any(flag), dist.barrier(), dist.finalize()
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local C = core.C
local check = core.check
local new, outp = tensor.new, tensor.outp

local M = {}

function M.init()
  check(C.vr_dist_init())
  return M
end
function M.rank() return C.vr_dist_rank() end
function M.size() return C.vr_dist_size() end
function M.local_rank() return C.vr_dist_local_rank() end
function M.is_main() return C.vr_dist_rank() == 0 end
function M.launcher()
  local s = C.vr_dist_launcher()
  return s ~= nil and ffi.string(s) or nil
end
function M.backend() return ffi.string(C.vr_dist_backend()) end
-- CUDA tensors through NCCL from here on (one GPU per local rank)
function M.use_nccl() check(C.vr_dist_use_nccl()) end

-- in place; tensors of several dtypes or devices go in one call per kind
function M.all_reduce_sum(list)
  local groups, order = {}, {}
  for _, t in ipairs(list) do
    local key = t:dtype() .. "/" .. t:device()
    if not groups[key] then groups[key] = {}; order[#order + 1] = key end
    local g = groups[key]
    g[#g + 1] = t
  end
  for _, key in ipairs(order) do
    local g = groups[key]
    local arr = ffi.new("vr_tensor *[?]", #g)
    for i, t in ipairs(g) do arr[i - 1] = t end
    check(C.vr_dist_all_reduce_sum(arr, #g))
  end
  return list
end

-- the ranks' tensors (the same shape) concatenated along dim (default 0); not differentiable
function M.all_gather(t, dim)
  dim = dim or 0
  if dim < 0 then dim = dim + t:dim() end
  if dim == 0 then return new(C.vr_dist_all_gather(t:contiguous(), outp)) end
  local g = new(C.vr_dist_all_gather(t:transpose(0, dim):contiguous(), outp))
  return g:transpose(0, dim):contiguous()
end

function M.broadcast(t, root)
  check(C.vr_dist_broadcast(t, root or 0))
  return t
end

local flag = ffi.new("int64_t[1]")
-- true on every rank when flag is true on any
function M.any(b)
  flag[0] = b and 1 or 0
  check(C.vr_dist_all_reduce_max(flag, 1))
  return flag[0] ~= 0
end

-- a list of booleans: each true on every rank when it is true on any
function M.any_each(list)
  local n = #list
  if n == 0 then return list end
  local buf = ffi.new("int64_t[?]", n)
  for i = 1, n do buf[i - 1] = list[i] and 1 or 0 end
  check(C.vr_dist_all_reduce_max(buf, n))
  local out = {}
  for i = 1, n do out[i] = buf[i - 1] ~= 0 end
  return out
end

-- the sum over ranks of a few host numbers (f64)
function M.sum_numbers(...)
  local n = select("#", ...)
  if M.size() == 1 then return ... end
  local t = tensor.tensor({ ... }, { dtype = "f64" })
  M.all_reduce_sum { t }
  local out = {}
  for i = 1, n do out[i] = t:get(i - 1) end
  return unpack(out, 1, n)
end

function M.barrier() check(C.vr_dist_barrier()) end
-- a collective waiting longer than this for the other ranks ends the job (0: no limit)
function M.set_timeout(seconds) C.vr_dist_set_timeout(seconds) end
function M.timeout() return C.vr_dist_timeout() end
-- ends every rank of the job (alone: nothing)
function M.abort(code) C.vr_dist_abort(code or 1) end
function M.finalize() check(C.vr_dist_finalize()) end

return M
