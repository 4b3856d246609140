-- many/medium/few-shot accuracy (visreg.shot_groups) on hand-made predictions
local tap = require "tap"
local function list(t) return table.concat(t, ",") end
local sg = require "visreg.shot_groups"

local g = sg.groups { 500, 400, 300, 200, 100, 90, 80, 70, 60, 50 }
tap.eq(list({ g[1], g[3], g[4], g[7], g[8], g[10] }), list({ "many", "many", "medium", "medium", "few", "few" }),
  "10 classes: top 3 many, middle 4 medium, bottom 3 few")
local g2 = sg.groups { 10, 30, 20 }
tap.eq(list({ g2[1], g2[2], g2[3] }), list({ "few", "many", "medium" }), "ranked by count, not by index")
local g3 = sg.groups { 5, 5, 5 }
tap.eq(list({ g3[1], g3[2], g3[3] }), list({ "many", "medium", "few" }), "ties keep the lower class first")

-- 3 classes, counts 100, 50, 10: class 0 all right, class 1 half, class 2 none
local labels = { 0, 0, 1, 1, 2, 2 }
local pred = { 0, 0, 1, 0, 1, 0 }
local a = sg.accuracy(pred, labels, { 100, 50, 10 })
tap.eq(list({ a.many, a.medium, a.few }), list({ 1, 0.5, 0 }), "group accuracies")
tap.eq(list(a.per_class), list { 1, 0.5, 0 }, "per-class accuracies")
local empty = sg.per_class({ 0 }, { 0 }, 2)
tap.ok(empty[2] ~= empty[2], "a class without test rows is NaN")

local vr = require "visreg"
local ds = vr.data.from_tensors(require("visreg.tensor").zeros(4, 1, 2, 2):byte(), require("visreg.tensor").tensor({ 0, 0, 0, 1 }):long(), 2)
local res = sg.add_to({}, require("visreg.tensor").tensor({ 0, 1 }):long(), require("visreg.tensor").tensor({ 0, 1 }):long(), ds, 2)
tap.ok(res.linear_probe_many == 1 and res.linear_probe_few == 1, "add_to: the summary's numbers",
  string.format("%s %s", tostring(res.linear_probe_many), tostring(res.linear_probe_few)))
tap.done()
