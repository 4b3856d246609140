-- the paper's Figure 2 at small scale (recipes/paper/collapse_gradients.lua, as a user runs it): each
-- regularizer's mean row gradient at collapse within 5% of the values of the paper's official script
-- at r = 1e-5 and r = 1.26e-4, and the shapes: SIGReg vanishes with r, VICReg and SWD stay flat,
-- VISReg and Barlow Twins grow as r shrinks
local tap = require "tap"
local vr = require "visreg"
local q = vr.util.shell_quote

local out = tap.scratch("paper")
local rc, text = tap.sh(q(VISREG_EXE) .. " run recipes/paper/collapse_gradients.lua " .. q(out))
tap.ok(rc == 0 and vr.util.file_exists(out .. "/collapse.svg") and vr.util.file_exists(out .. "/collapse.csv"),
  "the script runs and writes its plot and data", text)
local rows = {}
for name, a, pa, b, pb, c in text:gmatch("\n(%a+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)") do
  rows[name] = { tonumber(a), tonumber(pa), tonumber(b), tonumber(pb), tonumber(c) }
end
-- relative to the reference (tap.near's tolerance is absolute below 1, and these go down to 1e-8)
local function within(got, want, what)
  return tap.ok(got and want and math.abs(got / want - 1) <= 0.05, what, string.format("%s vs %s", tostring(got), tostring(want)))
end
for _, m in ipairs { "VISReg", "SIGReg", "SWD", "VICReg", "Barlow" } do
  local r = rows[m]
  if tap.ok(r, m .. " is in the table", text) then
    if r[2] then within(r[1], r[2], m .. " at r = 1e-5 within 5% of the paper's") end
    within(r[3], r[4], m .. " at r = 1.26e-4 within 5% of the paper's")
  end
end
if rows.SIGReg and rows.VISReg and rows.SWD and rows.VICReg and rows.Barlow then
  tap.ok(rows.SIGReg[5] / rows.SIGReg[1] > 1e4, "SIGReg's gradient vanishes with r")
  tap.ok(rows.VISReg[1] / rows.VISReg[5] > 1e4 and rows.Barlow[1] / rows.Barlow[5] > 1e3, "VISReg's and Barlow's grow as r shrinks")
  tap.ok(math.abs(rows.SWD[1] / rows.SWD[5] - 1) < 0.1 and math.abs(rows.VICReg[1] / rows.VICReg[5] - 1) < 0.1,
    "SWD's and VICReg's stay flat")
end
os.execute("rm -rf " .. q(out))
os.exit(tap.done(), true)
