-- hostile sizes from Lua: shapes whose product overflows raise (never a tensor of 0 elements),
-- and a .npy file declaring such a shape is refused by vr.load_npy and by `visreg loss --z`
local tap = require "tap"
local vr = require "visreg"
local util = vr.util

tap.raises(function() return vr.zeros(2 ^ 62, 4) end, { "vr_tensor_full", "elements" },
  "vr.zeros(2^62, 4) raises instead of making 0 elements")
tap.raises(function() return vr.empty(3074457345618258603, 6) end, { "elements" },
  "a product that wraps to a small number raises")
tap.raises(function() return vr.ones(0, 2 ^ 62, 4) end, { "elements" }, "a zero size does not hide an overflow")
tap.raises(function() return vr.zeros(1):expand(2 ^ 62, 4) end, { "vr_expand", "elements" }, "expand checks its sizes")
tap.raises(function() return vr.zeros(0, 3):view(2 ^ 62, 4, 0) end, { "vr_view" }, "view checks its sizes")
tap.raises(function() return vr.zeros(-1, 3) end, { "shape[0]" }, "a negative size raises")
local t = vr.zeros(2, 3)
tap.eq(t:numel(), 6, "ordinary shapes still work")

-- a .npy of shape (2^62, 4, 1): the header as numpy writes it, 16 bytes of data
local base = tap.scratch("hostile")
local path = base .. "/z.npy"
local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4, 1), }"
dict = dict .. string.rep(" ", (64 - (10 + #dict + 1) % 64) % 64) .. "\n"
util.write_file(path, "\147NUMPY\1\0" .. string.char(#dict % 256, math.floor(#dict / 256)) .. dict .. string.rep("\0", 16))
tap.raises(function() return vr.load_npy(path) end, { path, "more than" }, "load_npy refuses an overflowing shape")
local exe = VISREG_EXE
if exe then
  local rc, out = tap.sh(util.shell_quote(exe) .. " loss barlow --z " .. util.shell_quote(path))
  tap.ok(rc == 1 and out:find(path, 1, true) and out:find("more than", 1, true),
    "visreg loss barlow --z with that file exits 1 with the message", string.format("rc %s: %s", tostring(rc), out))
else
  tap.skip("visreg loss --z", "VISREG_EXE is not set")
end
os.execute("rm -rf " .. util.shell_quote(base))
os.exit(tap.done(), true)
