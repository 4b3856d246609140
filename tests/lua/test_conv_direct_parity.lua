-- training parity of the direct and Winograd convolution kernels: the default recipe's first steps
-- give the same losses with them (the best instruction set this CPU has, with each family of
-- micro-kernels: vectors of output channels, vectors of positions; Winograd on and off) as with
-- im2col + gemm, within the tolerance of reordered f32 sums (the paths add the same products in a different order;
-- training carries the difference forward a few steps)
local tap = require "tap"
local ffi = require "ffi"
local util = require "visreg.util"
local recipe = require "visreg.recipe"
local trainer = require "visreg.trainer"

if not tap.can_train("direct convolution parity") then os.exit(tap.done(), true) end
ffi.cdef [[ int vr_cpu_conv_force_isa(int isa); ]]

local base = tap.scratch("conv_direct_parity")
local STEPS = 4
local function losses(isa, out)
  local got = ffi.C.vr_cpu_conv_force_isa(isa)
  local r = recipe.load("recipes/fmnist_visreg.lua",
    { "device=cpu", "log.every=1", "eval.online_probe=false", "eval.linear_probe=false", "eval.knn=false" })
  trainer.train(r, { out = out, quiet = true, stop_at_step = STEPS })
  ffi.C.vr_cpu_conv_force_isa(-1)
  local l = {}
  for line in io.lines(out .. "/metrics.jsonl") do
    local m = util.json_decode(line)
    if m.type == "step" then l[#l + 1] = m.loss end
  end
  return l, got
end

local ref = losses(0, base .. "/im2col")
-- the default (channel tiles, Winograd for the layers with 32 channels and more), the direct
-- kernels alone, and the position tiles
for _, c in ipairs { { "channels", "on" }, { "channels", "off" }, { "positions", "off" } } do
  local tiles, what = c[1], c[1] .. " tiles, winograd " .. c[2]
  assert(ffi.C.vr_set_variant("cpu_tiles", tiles) == 0 and ffi.C.vr_set_variant("cpu_winograd", c[2]) == 0)
  local direct, isa = losses(-1, base .. "/direct-" .. tiles .. "-" .. c[2])
  assert(ffi.C.vr_set_variant("cpu_tiles", "channels") == 0 and ffi.C.vr_set_variant("cpu_winograd", "on") == 0)
  tap.ok(isa > 0, what .. ": the direct kernels run on this CPU", "instruction set " .. isa)
  tap.eq(#direct, STEPS, what .. ": a loss for each step")
  local worst = 0
  for i = 1, STEPS do worst = math.max(worst, math.abs(direct[i] - ref[i]) / math.abs(ref[i])) end
  print(string.format("# %s: largest relative loss difference %.3g over %d steps", what, worst, STEPS))
  tap.ok(worst < 1e-4, what .. ": the losses equal im2col's within reordered f32 sums",
    string.format("largest relative difference %.3g over %d steps (%s vs %s)", worst, STEPS,
      table.concat(direct, " "), table.concat(ref, " ")))
end
os.exit(tap.done(), true)
