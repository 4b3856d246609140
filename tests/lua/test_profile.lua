-- the op profiler from Lua: vr.profile(fn) counts fn's kernel calls per op and direction, prints
-- the table, turns itself off again (also when fn raises), and vr.profile.calls reads the counts
local tap = require "tap"
local vr = require "visreg"
local C = vr.C

local a, b = vr.randn(4, 5), vr.randn(4, 5)
a:requires_grad_(true)
local y = vr.profile(function()
  local s = (a + b):relu()
  s:sum():backward()
  return s
end)
tap.eq(y:size(1), 5, "vr.profile returns fn's results")
tap.eq(vr.profile.calls("binary.add"), 1, "one add forward counted")
tap.eq(vr.profile.calls("unary.relu"), 1, "one relu forward counted")
tap.eq(vr.profile.calls("unary.relu", true), 1, "one relu backward counted")
local _, ms = vr.profile.calls("binary.add")
tap.ok(ms >= 0, "device time is a number of ms", tostring(ms))
tap.eq(tonumber(C.vr_profile_enabled()), 0, "the profiler is off after vr.profile")
vr.profile.reset()
local ok, err = pcall(vr.profile, function() error("boom") end)
tap.ok(not ok and tostring(err):find("boom") and tonumber(C.vr_profile_enabled()) == 0,
  "an error inside vr.profile propagates and the profiler is off", tostring(err))
os.exit(tap.done(), true)
