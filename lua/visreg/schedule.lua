-- visreg.schedule: values that change over training, for any number in the recipe.
--
-- In a recipe, `schedule = { lr = vr.schedule.warmup_cosine{...}, ["loss.lambda"] = fn }` maps a key
-- path (lr is short for optim.lr) to a schedule. Spec schedules (constant, warmup_cosine, step,
-- linear) give a factor applied to the recipe's own value at that key (the base); a Lua function
-- fn(epoch, step, ctx) gives the value itself (ctx: steps_per_epoch, total_steps, epochs, base);
-- a number is a constant value. epoch and step count from 0; step is the global step.
local util = require "visreg.util"

local M = {}

local function spec(kind, what, t, defaults, rules)
  return util.spec("vr.schedule." .. what, kind, t, defaults, rules)
end

-- factor 1 (or value, when given, as the value itself)
function M.constant(t)
  return spec("constant", "constant", t, { value = false }, { value = { optional = true } })
end

-- linear warmup from start_ratio to 1 over warmup_epochs (or warmup_steps), then cosine decay to
-- final_ratio at the last step
function M.warmup_cosine(t)
  return spec("warmup_cosine", "warmup_cosine", t, { warmup_epochs = 0, warmup_steps = false, final_ratio = 0,
    start_ratio = 0 }, { warmup_epochs = { min = 0 }, warmup_steps = { int = true, min = 0, optional = true },
    final_ratio = { min = 0 }, start_ratio = { min = 0 } })
end
M.cosine = M.warmup_cosine

-- multiplied by gamma at each milestone epoch
function M.step(t)
  return spec("step", "step", t, { milestones = {}, gamma = 0.1 }, { milestones = { list = true, empty = true, min = 0 },
    gamma = { min = 0 } })
end

-- from `from` to `to` (factors) linearly over training (or over `epochs` epochs, then held)
function M.linear(t)
  return spec("linear", "linear", t, { from = 1, to = 0, epochs = false }, { from = {}, to = {},
    epochs = { gt = 0, optional = true } })
end

M.kinds = { constant = true, warmup_cosine = true, step = true, linear = true }

function M.is_schedule(s)
  return type(s) == "number" or util.is_callable(s) or (type(s) == "table" and M.kinds[s.kind] ~= nil)
end

-- the factor of a spec schedule at (epoch, step)
local function factor(s, epoch, step, ctx)
  local total = math.max(1, ctx.total_steps)
  if s.kind == "constant" then return 1 end
  if s.kind == "warmup_cosine" then
    local warm = s.warmup_steps or math.floor(s.warmup_epochs * ctx.steps_per_epoch + 0.5)
    if step < warm then
      return s.start_ratio + (1 - s.start_ratio) * (step + 1) / warm
    end
    local p = (step - warm) / math.max(1, total - warm)
    if p > 1 then p = 1 end
    return s.final_ratio + 0.5 * (1 - s.final_ratio) * (1 + math.cos(math.pi * p))
  end
  if s.kind == "step" then
    local f = 1
    for _, m in ipairs(s.milestones) do
      if epoch >= m then f = f * s.gamma end
    end
    return f
  end
  if s.kind == "linear" then
    local span = s.epochs and s.epochs * ctx.steps_per_epoch or total
    local p = math.min(1, step / math.max(1, span))
    return s.from + (s.to - s.from) * p
  end
  util.error("schedule: unknown kind '%s'", tostring(s.kind))
end

-- The value of schedule s at (epoch, step) for a key whose recipe value is base.
-- ctx: { steps_per_epoch =, total_steps =, epochs = }
function M.value(s, base, epoch, step, ctx)
  if type(s) == "number" then return s end
  if util.is_callable(s) then
    local c = { steps_per_epoch = ctx.steps_per_epoch, total_steps = ctx.total_steps, epochs = ctx.epochs, base = base }
    local v = s(epoch, step, c)
    if type(v) ~= "number" then
      util.error("schedule: the function gave %s at epoch %d step %d, expected a number", type(v), epoch, step)
    end
    return v
  end
  if s.kind == "constant" and s.value then return s.value end
  if type(base) ~= "number" then util.error("schedule: %s needs a number in the recipe to scale, got %s", s.kind, type(base)) end
  return base * factor(s, epoch, step, ctx)
end

-- schedule keys may be short: lr is optim.lr
M.aliases = { lr = "optim.lr", weight_decay = "optim.weight_decay", lambda = "loss.lambda", momentum = "optim.momentum" }
function M.resolve_key(k) return M.aliases[k] or k end

return M
