-- data.reduce: per-class picks, the exponential long-tail profile and the low-rank projection
-- (visreg.data_reduce), on small synthetic datasets; nothing here trains
local tap = require "tap"
local function list(t) return table.concat(t, ",") end
local vr = require "visreg"
local reduce = require "visreg.data_reduce"
local tensor = require "visreg.tensor"

-- the profile: class c of C keeps floor(n * r^(-c/(C-1)))
local counts = reduce.long_tail_counts({ 100, 100, 100, 100, 100, 100, 100, 100, 100, 100 }, 100)
tap.eq(counts[1], 100, "the head class keeps all its images")
tap.eq(counts[10], 1, "the tail class keeps n / r")
tap.eq(counts[2], math.floor(100 * 100 ^ (-1 / 9)), "class 1 keeps n r^(-1/9)")
tap.eq(reduce.long_tail_counts({ 7, 9 }, 0)[2], 9, "ratio 0 keeps everything")

-- pick: 3 classes of 20 labels each, interleaved
local labels = {}
for i = 1, 60 do labels[i] = (i - 1) % 3 end
local keep, kc = reduce.pick(labels, 3, { per_class = 10, long_tail = 10, seed = 0 })
tap.eq(#keep, 10 + math.floor(10 * 10 ^ -0.5) + 1, "per_class then long_tail: 10, 3 and 1 images")
local seen = { 0, 0, 0 }
for _, i in ipairs(keep) do seen[labels[i + 1] + 1] = seen[labels[i + 1] + 1] + 1 end
tap.eq(list(seen), list { 10, 3, 1 }, "each class keeps its count")
tap.eq(list(kc), list { 10, 3, 1 }, "the counts are returned")
local sorted = true
for k = 2, #keep do if keep[k] <= keep[k - 1] then sorted = false end end
tap.ok(sorted, "indices ascend")
local again = reduce.pick(labels, 3, { per_class = 10, long_tail = 10, seed = 0 })
tap.eq(list(again), list(keep), "the same seed picks the same images")
local other = reduce.pick(labels, 3, { per_class = 10, long_tail = 10, seed = 1 })
tap.ok(table.concat(other, ",") ~= table.concat(keep, ","), "another seed picks others")

-- apply on a dataset: 6 images a class of 2 classes, 4x4 pixels
local n = 12
local img, lab = {}, {}
for i = 1, n do
  local plane = {}
  for y = 1, 4 do
    plane[y] = {}
    for x = 1, 4 do plane[y][x] = (i * 7 + y * 13 + x * 29) % 256 end
  end
  img[i] = { plane }
  lab[i] = (i - 1) % 2
end
local images = tensor.tensor(img):byte()
local ds = vr.data.from_tensors(images, tensor.tensor(lab):long(), 2)
local tr, te = reduce.apply({ per_class = 4, long_tail = 4, seed = 3 }, ds, ds)
tap.eq(tr:count(), 5, "apply: 4 + 1 training images")
tap.eq(list({ tr:class_count(0), tr:class_count(1) }), list({ 4, 1 }), "apply: the long tail per class")
tap.eq(te:count(), n, "apply: the test split is untouched")

-- low rank: r = all components reproduces the images (to rounding); r = 1 leaves one direction
local full = reduce.low_rank({ ds }, 16)[1]
local d = (full:images():float() - images:float()):abs():max():item()
tap.ok(d <= 1, "low_rank with every component keeps the images within 1 grey level", d)
local one = reduce.low_rank({ ds, ds }, 1)
local x = one[2]:images():float():reshape { n, 16 }
local c = x - x:mean(0, true)
local s = c:double():svdvals():to_list()
tap.ok(s[2] < 0.05 * s[1] + 4, "low_rank 1: one direction left (up to rounding)", string.format("%g %g", s[1], s[2]))
tap.eq(list(one[2]:labels():to_list()), list(lab), "low_rank keeps the labels")
tap.raises(function() reduce.low_rank({ ds }, 17) end, { "low_rank", "1..16" }, "low_rank beyond D is refused")
tap.done()
