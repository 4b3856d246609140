-- visreg.bench: `visreg bench train RECIPE --steps N [--warmup W] [--device cpu|cuda|auto]
-- [--set key=value ...] [--json]` (tools/bench_train.c calls M.train with the arguments after
-- "train"). The run is built exactly as `visreg train` builds it (visreg.trainer's setup and fit,
-- through trainer.bench); prints the median and mean time per step and images per second, or one
-- JSON line with --json. Returns the process exit status.
local util = require "visreg.util"
local recipe = require "visreg.recipe"

local M = {}

local USAGE = [[usage: visreg bench train RECIPE.lua [--steps N] [--warmup W] [--device cpu|cuda|auto]
                          [--set key.path=value ...] [--json]
  --steps N     timed training steps (default 10)
  --warmup W    untimed steps first (default 2)
  --device D    overrides the recipe's device
  --set k=v     overrides a recipe value, as in visreg train
  --json        one JSON line instead of text
  --unfused     the per-tensor optimizer updates and host clipping (opt.fused = false), to compare
  --sync-steps  CUDA: wait for the device after every step and report the median step (default:
                the timed steps as one window, a wait at each end, as training runs them)]]

local OPTS = { steps = "value", warmup = "value", device = "value", set = "list", json = "flag", unfused = "flag",
  ["sync-steps"] = "flag" }

local cli = require "visreg.cli"
local function parse(args) return cli.parse(args, OPTS) end

local function fail(msg)
  io.stderr:write("visreg bench train: ", msg, "\n", USAGE, "\n")
  return 2
end

local function count(o, name, default, least)
  if o[name] == nil then return default end
  local v = tonumber(o[name])
  if not v or v ~= math.floor(v) or v < least then
    return nil, string.format("--%s: expected a whole number >= %d, got %s", name, least, o[name])
  end
  return v
end

function M.train(args)
  local pos, o = parse(args)
  if not pos then return fail(o) end
  if o.help then print(USAGE); return 0 end
  if #pos ~= 1 then return fail("expected one recipe, got " .. #pos) end
  local steps, e1 = count(o, "steps", 10, 1)
  if not steps then return fail(e1) end
  local warmup, e2 = count(o, "warmup", 2, 0)
  if not warmup then return fail(e2) end
  if o.device and o.device ~= "cpu" and o.device ~= "cuda" and o.device ~= "auto" then
    return fail("--device: expected cpu, cuda or auto, got " .. o.device)
  end
  local res = cli.run_protected(function()
    local r = recipe.load(pos[1], o.set)
    local trainer = require "visreg.trainer"
    local optim = require "visreg.optim"
    local was = optim.fused
    optim.fused = not o.unfused
    local ok2, res2 = pcall(trainer.bench, r, { steps = steps, warmup = warmup, device = o.device,
      sync_steps = o["sync-steps"] })
    optim.fused = was
    if not ok2 then error(res2, 0) end
    res2.fused_optim = not o.unfused
    return res2
  end)
  if type(res) ~= "table" then return res end
  if o.json then
    local line = {}
    for k, v in pairs(res) do if k ~= "step_seconds" then line[k] = v end end
    line.bench = "train"
    print(util.json_encode(line))
  else
    print(string.format("bench train %s on %s (%d threads): batch %d x %d views, %d timed steps after %d warm-up%s",
      res.recipe or pos[1], res.device, res.threads, res.batch, res.views, res.steps, res.warmup,
      res.fused_optim and "" or ", per-tensor optimizer"))
    if res.whole_window then
      print(string.format("time per step   %.2f ms (the %d steps as one window)", 1e3 * res.mean_s, res.steps))
      print(string.format("images/second   %.1f", res.mean_images_per_second))
    else
      print(string.format("time per step   median %.2f ms   mean %.2f ms", 1e3 * res.median_s, 1e3 * res.mean_s))
      print(string.format("images/second   median %.1f   mean %.1f", res.images_per_second, res.mean_images_per_second))
    end
  end
  return 0
end

return M
