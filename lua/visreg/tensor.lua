-- visreg.tensor: the tensor type, an ffi.metatype over the C library's vr_tensor.
--
-- Tensors are cdata pointers owned by the Lua GC (ffi.gc with vr_tensor_free). Operators + - * /
-- ^ and unary minus take tensors and numbers; every op in core/visreg.h is a method. Dims and
-- indices count from 0, and negative ones from the end, as in PyTorch and the C API; shapes are
-- Lua arrays ({B, D}). A failing C call raises a Lua error carrying vr_last_error(), blamed on
-- the first file:line outside the library (the recipe or script).
--
-- The Lua GC does not see tensor memory, so every new tensor's bytes are counted and a full
-- collection runs each time `gc_threshold` bytes have been made (vr.set_gc_threshold).
local ffi = require "ffi"
local core = require "visreg.core"
local util = require "visreg.util"
local C = core.C
local check = core.check

local M = {}
local T = {}      -- methods
local mt = { __index = T }

local TP = ffi.typeof("vr_tensor *")
local outp = ffi.new("vr_tensor *[1]")
local outp2 = ffi.new("vr_tensor *[1]")
local outp3 = ffi.new("vr_tensor *[1]")
local valp = ffi.new("double[1]")
local intp = ffi.new("int[1]")

local elsize = { [0] = 4, 8, 4, 8, 1, 2 }
local made_bytes = 0
M.gc_threshold = 256 * 1024 * 1024

local function is_tensor(x) return ffi.istype(TP, x) end
M.is_tensor = is_tensor

-- takes ownership of a new reference
local function wrap(p)
  if p == nil then return nil end
  made_bytes = made_bytes + tonumber(C.vr_tensor_numel(p)) * elsize[tonumber(C.vr_tensor_dtype(p))]
  if made_bytes > M.gc_threshold then
    made_bytes = 0
    collectgarbage()
  end
  return ffi.gc(p, C.vr_tensor_free)
end
M.wrap = wrap

-- the result of a C call that wrote a new tensor to outp
local function new(st)
  if st ~= 0 then
    outp[0] = nil
    util.error("%s", core.last_error())
  end
  local p = outp[0]
  outp[0] = nil
  return wrap(p)
end
M.new = new
M.outp = outp -- the slot new() reads: pass it as the C out argument

-- the results of a C call that wrote two tensors, to outp and outp2 (values, indices)
local function new2(st)
  local i = outp2[0]
  outp2[0] = nil
  if st ~= 0 and i ~= nil then C.vr_tensor_free(i) end
  return new(st), wrap(i)
end

-- the results of a C call that wrote three tensors, to outp, outp2 and outp3
local function new3(st)
  local b, c = outp2[0], outp3[0]
  outp2[0], outp3[0] = nil, nil
  if st ~= 0 then
    if b ~= nil then C.vr_tensor_free(b) end
    if c ~= nil then C.vr_tensor_free(c) end
  end
  return new(st), wrap(b), wrap(c)
end

local function need_tensor(x, what)
  if not is_tensor(x) then util.error("%s: expected a tensor, got %s", what, type(x)) end
  if x == nil then util.error("%s: expected a tensor, got a NULL tensor", what) end
  return x
end

---------------------------------------------------------------- argument helpers
local function int64s(list, what)
  local n = #list
  local a = ffi.new("int64_t[?]", math.max(n, 1))
  for i = 1, n do
    local v = list[i]
    if type(v) ~= "number" and not (type(v) == "cdata" and tonumber(v)) then
      util.error("%s: expected a list of integers, got %s at position %d", what or "shape", type(v), i)
    end
    a[i - 1] = v
  end
  return n, a
end
M.int64s = int64s

-- shape from a table or from numbers: f({2, 3}) or f(2, 3); returns the shape table and the rest
local function shape_args(...)
  local first = ...
  if type(first) == "table" and not is_tensor(first) then return first, select(2, ...) end
  local shape, n = {}, select("#", ...)
  local i = 1
  while i <= n do
    local v = select(i, ...)
    if type(v) ~= "number" then break end
    shape[#shape + 1] = v
    i = i + 1
  end
  return shape, select(i, ...)
end
M.shape_args = shape_args

-- reduction dims: nil for all, a number or a list
local function dims_arg(d)
  if d == nil then return 0, nil end
  if type(d) == "number" then
    local a = ffi.new("int[1]", d)
    return 1, a
  end
  if type(d) ~= "table" then util.error("dims: expected a number or a list of numbers, got %s", type(d)) end
  local a = ffi.new("int[?]", math.max(#d, 1))
  for i = 1, #d do a[i - 1] = d[i] end
  return #d, a
end

local function flag(b) return (b and b ~= 0) and 1 or 0 end

-- a number as a 0-dim tensor like ref (dtype and device)
local function scalar_like(v, ref)
  return new(C.vr_tensor_scalar(v, C.vr_tensor_dtype(ref), C.vr_tensor_device(ref), outp))
end
local function as_tensor(x, ref, what)
  if type(x) == "number" then return scalar_like(x, ref) end
  if type(x) == "boolean" then return scalar_like(x and 1 or 0, ref) end
  return need_tensor(x, what or "argument")
end

---------------------------------------------------------------- creation
local function opts_dtype(o) return core.dtype(o and o.dtype) end
local function opts_device(o) return core.device(o and o.device) end

local function finish_new(t, o)
  if o and o.requires_grad then check(C.vr_tensor_set_requires_grad(t, 1)) end
  return t
end

function M.empty(...)
  local shape, o = shape_args(...)
  local n, s = int64s(shape)
  return finish_new(new(C.vr_tensor_empty(n, s, opts_dtype(o), opts_device(o), outp)), o)
end
function M.zeros(...)
  local shape, o = shape_args(...)
  local n, s = int64s(shape)
  return finish_new(new(C.vr_tensor_zeros(n, s, opts_dtype(o), opts_device(o), outp)), o)
end
function M.ones(...)
  local shape, o = shape_args(...)
  local n, s = int64s(shape)
  return finish_new(new(C.vr_tensor_ones(n, s, opts_dtype(o), opts_device(o), outp)), o)
end
-- full(shape, value, opts)
function M.full(shape, value, o)
  local n, s = int64s(shape)
  return finish_new(new(C.vr_tensor_full(n, s, value, opts_dtype(o), opts_device(o), outp)), o)
end
-- arange(stop) | arange(start, stop[, step][, opts])
function M.arange(a, b, c, o)
  if type(b) == "table" then o, b = b, nil end
  if type(c) == "table" then o, c = c, nil end
  local start, stop, step = 0, a, 1
  if b ~= nil then start, stop, step = a, b, c or 1 end
  local dt = core.dtype(o and o.dtype or "f32")
  return finish_new(new(C.vr_tensor_arange(start, stop, step, dt, opts_device(o), outp)), o)
end
function M.scalar(v, o)
  return finish_new(new(C.vr_tensor_scalar(v, opts_dtype(o), opts_device(o), outp)), o)
end

-- nested Lua tables (or a flat list with opts.shape) -> tensor
function M.tensor(data, o)
  if is_tensor(data) then return data:clone() end
  if type(data) == "number" then return M.scalar(data, o) end
  if type(data) ~= "table" then util.error("tensor: expected a table of numbers, got %s", type(data)) end
  local shape = {}
  local probe = data
  while type(probe) == "table" do
    shape[#shape + 1] = #probe
    probe = probe[1]
  end
  local flat = {}
  local function walk(t, d)
    if d > #shape then
      if type(t) ~= "number" then
        if type(t) == "boolean" then t = t and 1 or 0
        else util.error("tensor: expected numbers, got %s", type(t)) end
      end
      flat[#flat + 1] = t
      return
    end
    if type(t) ~= "table" or #t ~= shape[d] then
      util.error("tensor: ragged nested table: expected %d entries at depth %d", shape[d], d)
    end
    for i = 1, #t do walk(t[i], d + 1) end
  end
  walk(data, 1)
  if o and o.shape then shape = o.shape end
  local dt = opts_dtype(o)
  local buf = ffi.new(core.ctypes[dt] .. "[?]", math.max(#flat, 1))
  if dt == C.VR_BF16 then
    local tmp = ffi.new("double[?]", math.max(#flat, 1), flat)
    local n, s = int64s(shape)
    local t64 = new(C.vr_tensor_from_buffer(tmp, n, s, C.VR_F64, opts_device(o), outp))
    return finish_new(t64:to(dt), o)
  end
  for i = 1, #flat do buf[i - 1] = flat[i] end
  local n, s = int64s(shape)
  return finish_new(new(C.vr_tensor_from_buffer(buf, n, s, dt, opts_device(o), outp)), o)
end

function M.load_npy(path)
  return new(C.vr_npy_load(path, outp))
end
function T:save_npy(path)
  check(C.vr_npy_save(path, self))
  return self
end

---------------------------------------------------------------- metadata
function T:dim() return C.vr_tensor_ndim(self) end
T.ndim = T.dim
function T:size(d)
  if d == nil then return self:shape() end
  local nd = C.vr_tensor_ndim(self)
  local dd = d < 0 and d + nd or d
  if dd < 0 or dd >= nd then util.error("size: dim: expected -%d..%d, got %d", nd, nd - 1, d) end
  return tonumber(C.vr_tensor_size(self, dd))
end
function T:shape()
  local s = {}
  for i = 0, C.vr_tensor_ndim(self) - 1 do s[i + 1] = tonumber(C.vr_tensor_size(self, i)) end
  return s
end
function T:stride(d)
  if d ~= nil then return tonumber(C.vr_tensor_stride(self, d)) end
  local s = {}
  for i = 0, C.vr_tensor_ndim(self) - 1 do s[i + 1] = tonumber(C.vr_tensor_stride(self, i)) end
  return s
end
function T:numel() return tonumber(C.vr_tensor_numel(self)) end
function T:nbytes() return self:numel() * elsize[tonumber(C.vr_tensor_dtype(self))] end
function T:dtype() return core.dtype_names[tonumber(C.vr_tensor_dtype(self))] end
function T:device() return core.device_names[tonumber(C.vr_tensor_device(self))] end
function T:is_contiguous() return C.vr_tensor_is_contiguous(self) ~= 0 end
function T:is_cuda() return C.vr_tensor_device(self) == C.VR_CUDA end
function T:version() return tonumber(C.vr_tensor_version(self)) end
function T:data_ptr() return C.vr_tensor_data(self) end
function T:shares_storage(o) return C.vr_tensor_shares_storage(self, need_tensor(o, "other")) ~= 0 end

function T:item()
  check(C.vr_tensor_item(self, valp))
  return valp[0]
end

local function index_args(self, ...)
  local n = select("#", ...)
  local nd = C.vr_tensor_ndim(self)
  if n ~= nd then util.error("index: expected %d indices for a %d-dim tensor, got %d", nd, nd, n) end
  local idx = ffi.new("int64_t[?]", math.max(n, 1))
  for i = 1, n do idx[i - 1] = select(i, ...) end
  return idx
end
-- element value at 0-based indices: t:get(i, j)
function T:get(...)
  check(C.vr_tensor_get(self, index_args(self, ...), valp))
  return valp[0]
end
-- t:set(i, j, value)
function T:set(...)
  local args = { ... }
  local n = select("#", ...)
  local v = args[n]
  if type(v) ~= "number" then util.error("set: value: expected a number, got %s", type(v)) end
  local idx = index_args(self, unpack(args, 1, n - 1))
  check(C.vr_tensor_set(self, idx, v))
  return self
end

-- host copy of the elements as doubles (row-major); returns the buffer and the count
local function host_doubles(t)
  local c = t
  if C.vr_tensor_device(c) ~= C.VR_CPU then c = new(C.vr_tensor_to_device(c, C.VR_CPU, outp)) end
  if C.vr_tensor_dtype(c) ~= C.VR_F64 then c = new(C.vr_tensor_to_dtype(c, C.VR_F64, outp)) end
  local n = tonumber(C.vr_tensor_numel(c))
  local buf = ffi.new("double[?]", math.max(n, 1))
  check(C.vr_tensor_to_buffer(c, buf, n * 8))
  return buf, n
end
M.host_doubles = host_doubles

-- nested Lua tables (a number for a 0-dim tensor)
function T:to_table()
  local buf = host_doubles(self)
  local shape = self:shape()
  if #shape == 0 then return buf[0] end
  local pos = 0
  local function build(d)
    local out = {}
    for i = 1, shape[d] do
      if d == #shape then out[i] = buf[pos]; pos = pos + 1 else out[i] = build(d + 1) end
    end
    return out
  end
  return build(1)
end
T.tolist = T.to_table
-- flat Lua array of the elements
function T:to_list()
  local buf, n = host_doubles(self)
  local out = {}
  for i = 1, n do out[i] = buf[i - 1] end
  return out
end

---------------------------------------------------------------- conversion and copies
function T:clone() return new(C.vr_tensor_clone(self, outp)) end
function T:contiguous() return new(C.vr_contiguous(self, outp)) end
-- to(dtype) | to(device) | to{dtype=, device=}
function T:to(a)
  local t = self
  local dt, dev
  if type(a) == "table" then dt, dev = a.dtype, a.device
  elseif a == "cpu" or a == "cuda" or a == "auto" or a == "gpu" then dev = a
  else dt = a end
  if dev ~= nil then
    local d = core.device(dev)
    if C.vr_tensor_device(t) ~= d then t = new(C.vr_tensor_to_device(t, d, outp)) end
  end
  if dt ~= nil then
    local d = core.dtype(dt)
    if C.vr_tensor_dtype(t) ~= d then t = new(C.vr_tensor_to_dtype(t, d, outp)) end
  end
  return t
end
function T:float() return self:to("f32") end
function T:double() return self:to("f64") end
function T:long() return self:to("i64") end
function T:int() return self:to("i32") end
function T:byte() return self:to("u8") end
function T:bf16() return self:to("bf16") end
function T:cpu() return self:to("cpu") end
function T:cuda() return self:to("cuda") end

---------------------------------------------------------------- views
function T:view(...)
  local shape = shape_args(...)
  local n, s = int64s(shape)
  return new(C.vr_view(self, n, s, outp))
end
function T:reshape(...)
  local shape = shape_args(...)
  local n, s = int64s(shape)
  return new(C.vr_reshape(self, n, s, outp))
end
function T:permute(...)
  local perm = shape_args(...)
  local a = ffi.new("int[?]", math.max(#perm, 1))
  for i = 1, #perm do a[i - 1] = perm[i] end
  if #perm ~= C.vr_tensor_ndim(self) then
    util.error("permute: perm: expected %d dims, got %d", C.vr_tensor_ndim(self), #perm)
  end
  return new(C.vr_permute(self, a, outp))
end
function T:transpose(d0, d1)
  return new(C.vr_transpose(self, d0 or 0, d1 or 1, outp))
end
function T:t() return new(C.vr_transpose(self, 0, 1, outp)) end
function T:narrow(dim, start, length) return new(C.vr_narrow(self, dim, start, length, outp)) end
function T:slice(dim, start, stop, step)
  local n = self:size(dim)
  return new(C.vr_slice(self, dim, start or 0, stop or n, step or 1, outp))
end
function T:select(dim, index) return new(C.vr_select(self, dim, index, outp)) end
function T:expand(...)
  local shape = shape_args(...)
  local n, s = int64s(shape)
  return new(C.vr_expand(self, n, s, outp))
end
function T:expand_as(o) return self:expand(o:shape()) end
function T:squeeze(dim)
  if dim == nil then
    local t = self
    for d = C.vr_tensor_ndim(self) - 1, 0, -1 do
      if C.vr_tensor_size(t, d) == 1 then t = new(C.vr_squeeze(t, d, outp)) end
    end
    return t
  end
  return new(C.vr_squeeze(self, dim, outp))
end
function T:unsqueeze(dim) return new(C.vr_unsqueeze(self, dim, outp)) end
function T:flatten(s, e) return new(C.vr_flatten(self, s or 0, e or -1, outp)) end

-- Indexing helper, like x[...] in PyTorch: each argument is an index (selects, the dim goes),
-- a range {start, stop[, step]} (stop exclusive, nil for the end) or {} for the whole dim.
-- t:at(0) is t[0]; t:at({}, {1, 3}) is t[:, 1:3]. Also t(...) for short.
function T:at(...)
  local t, d = self, 0
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if type(s) == "number" then
      t = t:select(d, s)
    elseif type(s) == "table" then
      if s[1] ~= nil or s[2] ~= nil then t = t:slice(d, s[1] or 0, s[2], s[3] or 1) end
      d = d + 1
    elseif s == nil or s == "all" or s == ":" then
      d = d + 1
    else
      util.error("at: argument %d: expected an index, a {start, stop[, step]} range or {}, got %s", i, type(s))
    end
  end
  return t
end
mt.__call = T.at

---------------------------------------------------------------- in-place
function T:fill_(v)
  check(C.vr_fill_(self, v))
  return self
end
function T:zero_() return self:fill_(0) end
function T:copy_(src)
  check(C.vr_copy_(self, as_tensor(src, self, "src")))
  return self
end
-- t += alpha * src
function T:add_(src, alpha)
  if type(src) == "number" then
    check(C.vr_add_(self, scalar_like(src, self), alpha or 1))
  else
    check(C.vr_add_(self, need_tensor(src, "src"), alpha or 1))
  end
  return self
end
function T:sub_(src, alpha) return self:add_(src, -(alpha or 1)) end
function T:mul_(s)
  if type(s) ~= "number" then util.error("mul_: expected a number, got %s", type(s)) end
  check(C.vr_mul_scalar_(self, s))
  return self
end

---------------------------------------------------------------- autograd
function T:requires_grad_(b)
  check(C.vr_tensor_set_requires_grad(self, b == nil and 1 or flag(b)))
  return self
end
function T:requires_grad() return C.vr_tensor_requires_grad(self) ~= 0 end
function T:is_leaf() return C.vr_tensor_is_leaf(self) ~= 0 end
function T:grad() return wrap(C.vr_tensor_grad(self)) end
function T:set_grad(g)
  if g ~= nil then need_tensor(g, "grad") end
  C.vr_tensor_set_grad(self, g)
  return self
end
function T:zero_grad() C.vr_tensor_set_grad(self, nil); return self end
function T:grad_fn() return ffi.string(C.vr_tensor_grad_fn_name(self)) end
function T:detach() return new(C.vr_detach(self, outp)) end
function T:backward(grad, retain_graph)
  if grad ~= nil then need_tensor(grad, "grad") end
  check(C.vr_backward(self, grad, flag(retain_graph)))
end

---------------------------------------------------------------- elementwise
local unary = { "neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh", "sigmoid", "relu", "sin", "cos",
  "square", "erf", "erfinv" }
for _, name in ipairs(unary) do
  local cname = "vr_" .. name -- looked up at the call, so a missing symbol fails only when used
  T[name] = function(self) return new(C[cname](self, outp)) end
end
function T:gelu(approximate)
  return new(C.vr_gelu(self, (approximate == "tanh" or approximate == true) and 1 or 0, outp))
end
function T:clamp(lo, hi)
  return new(C.vr_clamp(self, lo or -math.huge, hi or math.huge, outp))
end

local function binary(cname, fs)
  return function(a, b)
    if type(b) == "number" and fs then return fs(need_tensor(a, "a"), b) end
    return new(C[cname](need_tensor(a, "a"), as_tensor(b, a, "b"), outp))
  end
end
T.add = binary("vr_add", function(a, s) return new(C.vr_add_scalar(a, s, outp)) end)
T.mul = binary("vr_mul", function(a, s) return new(C.vr_mul_scalar(a, s, outp)) end)
T.div = binary("vr_div", function(a, s) return new(C.vr_mul_scalar(a, 1 / s, outp)) end)
T.pow = binary("vr_pow", function(a, s) return new(C.vr_pow_scalar(a, s, outp)) end)
T.maximum = binary("vr_maximum")
T.minimum = binary("vr_minimum")
T.eq = binary("vr_eq")
T.gt = binary("vr_gt")
T.lt = binary("vr_lt")
T.sub = binary("vr_sub", function(a, s) return new(C.vr_add_scalar(a, -s, outp)) end)
function T:isfinite_all()
  check(C.vr_isfinite_all(self, intp))
  return intp[0] ~= 0
end

mt.__add = function(a, b)
  if type(a) == "number" then return new(C.vr_add_scalar(need_tensor(b, "b"), a, outp)) end
  return T.add(a, b)
end
mt.__sub = function(a, b)
  if type(a) == "number" then return new(C.vr_rsub_scalar(need_tensor(b, "b"), a, outp)) end
  return T.sub(a, b)
end
mt.__mul = function(a, b)
  if type(a) == "number" then return new(C.vr_mul_scalar(need_tensor(b, "b"), a, outp)) end
  return T.mul(a, b)
end
mt.__div = function(a, b)
  if type(a) == "number" then return new(C.vr_rdiv_scalar(need_tensor(b, "b"), a, outp)) end
  return T.div(a, b)
end
mt.__pow = function(a, b)
  if type(a) == "number" then return new(C.vr_pow(scalar_like(a, b), b, outp)) end
  return T.pow(a, b)
end
mt.__unm = function(a) return new(C.vr_neg(a, outp)) end
mt.__len = function(a) return C.vr_tensor_ndim(a) > 0 and tonumber(C.vr_tensor_size(a, 0)) or 0 end

---------------------------------------------------------------- reductions
function T:sum(dims, keepdim)
  local n, d = dims_arg(dims)
  return new(C.vr_sum(self, n, d, flag(keepdim), outp))
end
function T:mean(dims, keepdim)
  local n, d = dims_arg(dims)
  return new(C.vr_mean(self, n, d, flag(keepdim), outp))
end
-- correction: 1 (unbiased, the default as in PyTorch) or 0
function T:var(dims, correction, keepdim)
  local n, d = dims_arg(dims)
  return new(C.vr_var(self, n, d, correction == nil and 1 or correction, flag(keepdim), outp))
end
function T:std(dims, correction, keepdim)
  local n, d = dims_arg(dims)
  return new(C.vr_std(self, n, d, correction == nil and 1 or correction, flag(keepdim), outp))
end
function T:norm(p, dims, keepdim)
  local n, d = dims_arg(dims)
  return new(C.vr_norm(self, p or 2, n, d, flag(keepdim), outp))
end
-- max() over everything; max(dim[, keepdim]) gives values, indices
function T:max(dim, keepdim)
  if dim == nil then return new(C.vr_max_all(self, outp)) end
  return new2(C.vr_max(self, dim, flag(keepdim), outp, outp2))
end
function T:min(dim, keepdim)
  if dim == nil then return new(C.vr_min_all(self, outp)) end
  return new2(C.vr_min(self, dim, flag(keepdim), outp, outp2))
end
function T:argmax(dim, keepdim)
  if dim == nil then return self:reshape(-1):argmax(0) end
  return new(C.vr_argmax(self, dim, flag(keepdim), outp))
end
function T:argmin(dim, keepdim)
  if dim == nil then return self:reshape(-1):argmin(0) end
  return new(C.vr_argmin(self, dim, flag(keepdim), outp))
end

---------------------------------------------------------------- linear algebra, nn ops
function T:matmul(b) return new(C.vr_matmul(self, need_tensor(b, "b"), outp)) end
function T:linear(w, b) return new(C.vr_linear(self, need_tensor(w, "weight"), b, outp)) end
-- decompositions of a 2-D f32/f64 matrix (LAPACK; CUDA tensors go through the host), differentiable.
-- eigh: a symmetric matrix (its lower triangle is read) -> values (ascending), vectors (columns)
function T:eigh() return new2(C.vr_eigh(self, outp, outp2)) end
function T:eigvalsh() return new(C.vr_eigh(self, outp, nil)) end
-- svd: the reduced SVD -> U (m x k), S (k, descending), Vh (k x n), k = min(m, n)
function T:svd() return new3(C.vr_svd(self, outp, outp2, outp3)) end
function T:svdvals() return new(C.vr_svd(self, nil, outp, nil)) end
function T:softmax(dim) return new(C.vr_softmax(self, dim or -1, outp)) end
function T:log_softmax(dim) return new(C.vr_log_softmax(self, dim or -1, outp)) end

---------------------------------------------------------------- joining, indexing, sorting
local function tensor_list(list, what)
  local n = #list
  local a = ffi.new("vr_tensor *[?]", math.max(n, 1))
  for i = 1, n do a[i - 1] = need_tensor(list[i], what .. "[" .. i .. "]") end
  return n, a
end
function M.cat(list, dim)
  local n, a = tensor_list(list, "tensors")
  return new(C.vr_concat(n, a, dim or 0, outp))
end
M.concat = M.cat
function M.stack(list, dim)
  local n, a = tensor_list(list, "tensors")
  return new(C.vr_stack(n, a, dim or 0, outp))
end
-- split(size_or_sizes, dim): a number splits into pieces of that size (the last may be smaller)
function T:split(sizes, dim)
  dim = dim or 0
  if type(sizes) == "number" then
    local total, list = self:size(dim), {}
    local k = 0
    while k < total do list[#list + 1] = math.min(sizes, total - k); k = k + sizes end
    sizes = list
  end
  local n, s = int64s(sizes, "sizes")
  local outs = ffi.new("vr_tensor *[?]", math.max(n, 1))
  check(C.vr_split(self, n, s, dim, outs))
  local res = {}
  for i = 1, n do res[i] = wrap(outs[i - 1]) end
  return res
end
function T:chunk(n, dim)
  return self:split(math.ceil(self:size(dim or 0) / n), dim)
end
function T:index_select(dim, index) return new(C.vr_index_select(self, dim, need_tensor(index, "index"), outp)) end
function T:gather(dim, index) return new(C.vr_gather(self, dim, need_tensor(index, "index"), outp)) end
function T:scatter_add(dim, index, src)
  return new(C.vr_scatter_add(self, dim, need_tensor(index, "index"), need_tensor(src, "src"), outp))
end
function T:sort(dim, descending)
  return new2(C.vr_sort(self, dim or -1, flag(descending), outp, outp2))
end
function T:argsort(dim, descending) return new(C.vr_argsort(self, dim or -1, flag(descending), outp)) end
function T:topk(k, dim, largest)
  return new2(C.vr_topk(self, k, dim or -1, largest == false and 0 or 1, outp, outp2))
end
function M.where(cond, a, b)
  local ref = is_tensor(a) and a or b
  return new(C.vr_where(need_tensor(cond, "cond"), as_tensor(a, ref, "a"), as_tensor(b, ref, "b"), outp))
end
function T:where(cond, other) return M.where(cond, self, other) end
function T:masked_fill(mask, value) return new(C.vr_masked_fill(self, need_tensor(mask, "mask"), value, outp)) end
function T:one_hot(num_classes, dtype)
  return new(C.vr_one_hot(self, num_classes, core.dtype(dtype or "f32"), outp))
end

---------------------------------------------------------------- printing
M.format = require("visreg.tensor_format").format -- format(t, name): PyTorch-style text
mt.__tostring = function(t)
  if t == nil then return "tensor(NULL)" end
  return M.format(t)
end
function T:print() print(M.format(self)) end
function T:shape_str() return "[" .. table.concat(self:shape(), ", ") .. "]" end

---------------------------------------------------------------- grad mode
function M.grad_enabled() return C.vr_grad_enabled() ~= 0 end
function M.set_grad_enabled(b) return C.vr_set_grad_enabled(flag(b)) ~= 0 end
-- no_grad(fn, ...): runs fn with grad mode off, restoring the mode even when fn raises
function M.no_grad(fn, ...)
  local prev = C.vr_set_grad_enabled(0)
  local res = { pcall(fn, ...) }
  C.vr_set_grad_enabled(prev)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end
function M.enable_grad(fn, ...)
  local prev = C.vr_set_grad_enabled(1)
  local res = { pcall(fn, ...) }
  C.vr_set_grad_enabled(prev)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end
-- autocast(dtype, fn, ...): runs fn with mixed precision dtype ("bf16", or "f32" for off): matmul,
-- linear and conv2d take f32 inputs in bf16; matmul and linear give f32, conv2d gives bf16 (as in
-- PyTorch), and bf16 meeting f32 in an elementwise op or cat is widened to f32 (core/autocast.c);
-- the previous setting comes back even when fn raises
function M.autocast(dtype, fn, ...)
  local prev = C.vr_autocast_get()
  core.check(C.vr_autocast_set(core.dtype(dtype)))
  local res = { pcall(fn, ...) }
  C.vr_autocast_set(prev)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end

-- an unknown method or field is an error that names the nearest methods (a missing key of the
-- opaque struct was an error before this, too)
setmetatable(T, {
  __index = function(_, k)
    if type(k) ~= "string" then
      error("tensor: no field " .. tostring(k) .. " (index with x:at(...) or x:get(...))", 2)
    end
    local names = {}
    for name in pairs(T) do
      if name:sub(1, 1) ~= "_" then names[#names + 1] = name end
    end
    local hint = util.did_you_mean(k, names)
    error("tensor has no method '" .. k .. "'" .. (hint and ("; " .. hint) or ""), 2)
  end,
})

-- The operators' metamethods are callable tables, not functions: LuaJIT 2.1's trace recorder (the
-- 2022 and 2023 builds Debian ships) can crash recording an operator on cdata whose metamethod is
-- a Lua function at the start of a hot function's trace (`local function f(z) return z + 1 end`
-- called often enough); given another callable it ends the trace there instead, and the
-- interpreter runs the operator, whose work is the C kernel's either way.
for _, name in ipairs { "__add", "__sub", "__mul", "__div", "__pow", "__unm", "__len" } do
  local fn = mt[name]
  mt[name] = setmetatable({}, { __call = function(_, a, b) return fn(a, b) end })
end

M.methods = T
M.metatable = mt
M.type = TP
ffi.metatype("struct vr_tensor", mt)
return M
