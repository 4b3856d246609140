-- `visreg bench train`: a tiny recipe on the CPU for 2 steps, as text and as one JSON line with
-- the time per step, images per second and the run's shape; --set reaches the recipe; bad
-- arguments exit 2 with the usage
local tap = require "tap"
local vr = require "visreg"
local util = vr.util

local exe = VISREG_EXE
local sh = tap.sh
local q = util.shell_quote

local rc, out = sh(q(exe) .. " bench train --steps 0 x.lua")
tap.ok(rc == 2 and out:find("--steps: expected a whole number >= 1, got 0", 1, true) and out:find("usage:", 1, true),
  "--steps 0 is refused with the usage", out)
rc, out = sh(q(exe) .. " bench train x.lua --bogus")
tap.ok(rc == 2 and out:find("unknown option --bogus", 1, true), "an unknown option is refused", out)
rc, out = sh(q(exe) .. " bench train")
tap.ok(rc == 2 and out:find("expected one recipe", 1, true), "a recipe is required", out)

if not tap.can_train("bench train runs") then os.exit(tap.done(), true) end

local base = tap.scratch("bench")
local path = base .. "/tiny.lua"
util.write_file(path, [[
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment
return vr.recipe {
  name = "tiny-bench", seed = 1, epochs = 1, batch = 32, device = "cpu",
  data = vr.data.fashion_mnist { subset = 64, test_subset = 32 },
  views = { global = { n = 2, pipeline = { aug.random_resized_crop { scale = { 0.5, 1 } } } } },
  model = function()
    local enc = nn.smallcnn { width = 4 }
    return enc, nn.mlp { enc.out_dim, 32, 16 }
  end,
  loss = vr.loss.visreg { lambda = 0.6, slices = 32 },
  optim = vr.optim.adamw { lr = 1e-3, clip_grad_norm = 1 },
  loader = { workers = 0 },
}
]])

rc, out = sh(q(exe) .. " bench train " .. q(path) .. " --steps 2 --warmup 1 --json --set batch=16 --device cpu")
local line = out:match("(%b{})")
local ok, j = pcall(util.json_decode, line or "")
tap.ok(rc == 0 and ok and type(j) == "table", "--json prints one JSON line", out)
if ok and type(j) == "table" then
  tap.ok(j.bench == "train" and j.recipe == "tiny-bench" and j.device == "cpu" and j.steps == 2 and j.warmup == 1,
    "the line names the bench, recipe, device, steps and warm-up", line)
  tap.ok(j.batch == 16 and j.views == 2 and j.images_per_step == 32, "--set reaches the recipe; images per step are B x views", line)
  tap.ok(j.median_s > 0 and j.mean_s > 0 and j.threads >= 1, "median and mean seconds per step are positive", line)
  tap.ok(j.fused_optim == true, "the fused optimizer is the default", line)
  tap.near(j.images_per_second, 32 / j.median_s, 1e-6 * j.images_per_second, "images per second from the median step")
end
-- text; 2 warm-up + 2 timed steps of 2 batches per epoch run into a second epoch
rc, out = sh(q(exe) .. " bench train " .. q(path) .. " --steps 2")
tap.ok(rc == 0 and out:find("bench train tiny-bench on cpu", 1, true) and out:find("time per step +median [%d.]+ ms +mean [%d.]+ ms")
  and out:find("images/second +median [%d.]+ +mean [%d.]+"), "the text report has time per step and images per second", out)
rc, out = sh(q(exe) .. " bench train " .. q(path) .. " --steps 1 --warmup 0 --unfused --json")
tap.ok(rc == 0 and out:find('"fused_optim":false', 1, true), "--unfused runs the per-tensor optimizer", out)
os.execute("rm -rf " .. q(base))
os.exit(tap.done(), true)
