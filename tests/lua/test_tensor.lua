-- the tensor metatype: construction, arithmetic with tensors and numbers, methods, views,
-- indexing, printing, errors carrying the C message and the caller's line, GC accounting
local tap = require "tap"
local vr = require "visreg"

local a = vr.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { dtype = "f64" })
local b = vr.tensor({ 10, 20, 30 }, { dtype = "f64" })
tap.eq(a:shape_str(), "[2, 3]", "shape from nested tables")
tap.eq(a:dtype(), "f64", "dtype option")
tap.eq(a:get(1, 2), 6, "get with 0-based indices")
tap.eq(#a, 2, "# is the first dim")
tap.eq(a:numel(), 6, "numel")

local function flat(t) return t:to_list() end
tap.all_near(flat(a + b), { 11, 22, 33, 14, 25, 36 }, 0, "tensor + tensor broadcasts")
tap.all_near(flat(a + 1), { 2, 3, 4, 5, 6, 7 }, 0, "tensor + number")
tap.all_near(flat(1 + a), { 2, 3, 4, 5, 6, 7 }, 0, "number + tensor")
tap.all_near(flat(a - 1), { 0, 1, 2, 3, 4, 5 }, 0, "tensor - number")
tap.all_near(flat(10 - a), { 9, 8, 7, 6, 5, 4 }, 0, "number - tensor")
tap.all_near(flat(b - a), { 9, 18, 27, 6, 15, 24 }, 0, "tensor - tensor")
tap.all_near(flat(a * 2), { 2, 4, 6, 8, 10, 12 }, 0, "tensor * number")
tap.all_near(flat(3 * a), { 3, 6, 9, 12, 15, 18 }, 0, "number * tensor")
tap.all_near(flat(a * b), { 10, 40, 90, 40, 100, 180 }, 0, "tensor * tensor")
tap.all_near(flat(a / 2), { 0.5, 1, 1.5, 2, 2.5, 3 }, 1e-15, "tensor / number")
tap.all_near(flat(6 / a), { 6, 3, 2, 1.5, 1.2, 1 }, 1e-15, "number / tensor")
tap.all_near(flat(b / a), { 10, 10, 10, 2.5, 4, 5 }, 1e-15, "tensor / tensor")
tap.all_near(flat(-a), { -1, -2, -3, -4, -5, -6 }, 0, "unary minus")
tap.all_near(flat(a ^ 2), { 1, 4, 9, 16, 25, 36 }, 1e-15, "tensor ^ number")
tap.all_near(flat(2 ^ a:narrow(1, 0, 2)), { 2, 4, 16, 32 }, 1e-15, "number ^ tensor")
tap.near(a:sum():item(), 21, 0, "sum")
tap.all_near(flat(a:sum(0)), { 5, 7, 9 }, 0, "sum over a dim")
tap.all_near(flat(a:mean(1, true)), { 2, 5 }, 1e-15, "mean keepdim")
tap.eq(a:mean(1, true):shape_str(), "[2, 1]", "keepdim keeps the dim")
tap.near(a:var():item(), 3.5, 1e-12, "var is unbiased by default")
tap.near(a:var(nil, 0):item(), 17.5 / 6, 1e-12, "var with correction 0")
local mx, ix = a:max(1)
tap.ok(mx:get(1) == 6 and ix:get(1) == 2 and ix:dtype() == "i64", "max along a dim gives values and indices")
tap.eq(a:max():item(), 6, "max of everything")
tap.all_near(flat(a:matmul(b:view(3, 1))), { 140, 320 }, 1e-12, "matmul")
tap.all_near(flat(a:t()), { 1, 4, 2, 5, 3, 6 }, 0, "transpose view")
tap.ok(a:t():shares_storage(a) and not a:t():is_contiguous(), "views share storage")
tap.all_near(flat(a:at({}, 1)), { 2, 5 }, 0, "at({}, 1) is a column")
tap.all_near(flat(a(1)), { 4, 5, 6 }, 0, "t(i) selects a row")
tap.all_near(flat(a:at(0, { 1, 3 })), { 2, 3 }, 0, "ranges with 0-based, exclusive ends")
tap.all_near(flat(a:relu():exp():log()), flat(a), 1e-12, "unary methods")
tap.all_near(flat(vr.cat({ a, a }, 0):sum(0)), { 10, 14, 18 }, 0, "cat")
tap.eq(vr.stack({ b, b }, 0):shape_str(), "[2, 3]", "stack")
local parts = vr.arange(0, 10):split(4)
tap.ok(#parts == 3 and parts[3]:numel() == 2, "split into sizes")
tap.all_near(flat(vr.where(a:gt(3), a, 0)), { 0, 0, 0, 4, 5, 6 }, 0, "where with a scalar")
tap.eq(vr.arange(5, { dtype = "i64" }):dtype(), "i64", "arange dtype")
local sorted, order = vr.tensor({ 3, 1, 2 }):sort(0)
tap.ok(sorted:get(0) == 1 and order:get(0) == 1, "sort gives values and indices")

-- in place
local c = vr.zeros(2, 2)
c:fill_(2):add_(vr.ones(2, 2), 3):mul_(0.5)
tap.all_near(flat(c), { 2.5, 2.5, 2.5, 2.5 }, 0, "in-place fill_, add_, mul_")
local v0 = c:version()
c:at(0):copy_(vr.tensor { 7, 8 })
tap.ok(c:get(0, 1) == 8 and c:version() > v0, "copy_ into a view writes through and bumps the version")
c:set(1, 1, -1)
tap.eq(c:get(1, 1), -1, "set")

-- autograd
local x = vr.tensor({ 1, 2, 3 }, { dtype = "f64", requires_grad = true })
local y = (x * x):sum()
y:backward()
tap.all_near(flat(x:grad()), { 2, 4, 6 }, 0, "backward through operators")
tap.eq(y:grad_fn() ~= "", true, "a result has a grad_fn")
local z = vr.no_grad(function() return x * 2 end)
tap.ok(not z:requires_grad(), "no_grad records nothing")
tap.ok(vr.grad_enabled(), "no_grad restores grad mode")
tap.raises(function() vr.no_grad(function() error("boom") end) end, "boom", "no_grad passes errors through")
tap.ok(vr.grad_enabled(), "no_grad restores grad mode after an error")

-- errors: the C message, raised at the caller's line
tap.raises(function() local r = a + vr.ones(4, { dtype = "f64" }); return r end, { "test_tensor.lua:", "vr_add", "shape" }, "a shape mismatch raises the C message at the caller's line")
tap.raises(function() local r = a:view(4, 4); return r end, { "test_tensor.lua:", "vr_view", "(core/view.c:" }, "view errors carry the C file:line")
tap.raises(function() return a:matmul(a) end, { "vr_matmul" }, "matmul shape errors")
tap.raises(function() return a + {} end, { "expected a tensor" }, "a table is not a tensor")
tap.raises(function() return a:get(0) end, { "expected 2 indices" }, "get checks the index count")
tap.raises(function() return vr.zeros(2, { dtype = "f16" }) end, { "unknown dtype 'f16'" }, "unknown dtypes are refused")
tap.raises(function() return vr.tensor { { 1, 2 }, { 3 } } end, { "ragged" }, "ragged tables are refused")

-- printing
local s = tostring(vr.tensor({ { 1.5, -2 }, { 3, 4 } }))
tap.eq(s, "tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  4.0000]])", "printing like torch")
tap.eq(tostring(vr.tensor({ 1, 2 }, { dtype = "i64" })), "tensor([1, 2], dtype=i64)", "integer printing")
local big = tostring(vr.arange(0, 2000):view(40, 50))
tap.ok(big:find("...", 1, true) and big:find("shape=[40, 50]", 1, true) and #big < 600, "large tensors print summarised", big)
tap.ok(tostring(x):find("requires_grad=true", 1, true), "printing shows requires_grad")

-- the GC is told about tensor memory: making many large tensors keeps memory bounded
collectgarbage()
local before = collectgarbage("count")
for _ = 1, 100 do local t = vr.zeros(1024, 1024) end -- 400 MB in all
local rss = io.open("/proc/self/status"):read("*a"):match("VmRSS:%s*(%d+)")
tap.ok(tonumber(rss) < 1024 * 1024, "a loop of 4 MB tensors stays below 1 GB resident", rss .. " kB")
tap.ok(collectgarbage("count") - before < 10000, "the Lua heap stays small")

-- operators on tensors in functions the JIT finds hot at once (hotloop=1): each operator and a
-- small function of them, recorded from the function's start; a child process, as a crash there
-- would end this one
local dir = tap.scratch("tensor_jit_ops")
local f = assert(io.open(dir .. "/ops.lua", "w"))
f:write([[
jit.opt.start("hotloop=1")
local vr = require "visreg"
local g = vr.randn(20, 4)
local ops = {
  function(z) return z + 0.5 end, function(z) return z - 2 end, function(z) return z * 3 end,
  function(z) return z / 4 end, function(z) return z ^ 2 end, function(z) return -z end,
  function(z) return 1 - z end, function(z) return #z end,
  function(z) return z / (z:norm(2, 1, true) + 1e-12) end,
}
for _, op in ipairs(ops) do for _ = 1, 40 do op(g) end end
print("all ran")
]])
f:close()
local rc_run, out_run = tap.sh(VISREG_EXE .. " run " .. dir .. "/ops.lua")
tap.ok(rc_run == 0 and out_run:find("all ran", 1, true), "tensor operators in hot functions run under the JIT", out_run)

os.exit(tap.done(), true)
