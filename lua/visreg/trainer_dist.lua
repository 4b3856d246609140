-- visreg.trainer_dist: what the trainer does differently on several ranks (visreg.dist).
--
-- Each rank reads its part of every global batch (the loader's shard), encodes it, and the
-- objective is taken on the global batch: the ranks' embeddings z (V x B/N x D each) are
-- all-gathered along the batch axis, every rank evaluates the loss on the whole V x B x D batch,
-- and the gradient with respect to the gathered batch goes back to each rank's own rows:
--   - slices "shared" (default): every rank draws the same slices, so every rank computes the
--     same loss, equal to one process's on the global batch; its gradient for the global batch is
--     the same on every rank, and rank r keeps N x its own rows (the gradients are averaged over
--     the ranks afterwards, which divides by N);
--   - slices "per_rank": rank r draws its own slices (seed + r), the objective (and the logged
--     loss) is the mean over ranks of their losses (K x N slices in effect, the reference code's behaviour), and the
--     gradients for the global batch are summed over the ranks (an all-reduce) before rank r
--     keeps its rows.
-- The embedding's own graph is then driven by a surrogate <z, g_r> whose value is replaced by the
-- loss: the trainer's backward and logging are unchanged. Parameter gradients are summed over
-- the ranks in 32 MiB buckets and divided by N before the optimizer step, so the parameters stay
-- identical on every rank.
local dist = require "visreg.dist"
local util = require "visreg.util"

local M = {}

local function slice_mode(r)
  local m = (r.dist and r.dist.slices) or "shared"
  if m ~= "shared" and m ~= "per_rank" then
    util.error("dist.slices: expected \"shared\" or \"per_rank\", got %s", tostring(m))
  end
  return m
end
M.slice_mode = slice_mode

-- joins the job (alone: rank 0 of 1); on several ranks, CUDA tensors go through NCCL
function M.setup(self)
  dist.init()
  self.rank, self.ranks = dist.rank(), dist.size()
  if self.r.dist and self.r.dist.timeout then dist.set_timeout(self.r.dist.timeout) end
  if self.ranks > 1 and self.device == "cuda" then dist.use_nccl() end
  if self.ranks > 1 and self.rank == 0 and not (self.opts and self.opts.quiet) then
    local r = self.r
    print(string.format("data-parallel: %d ranks (%s, %s), global batch %d = %d x %d, slices %s", self.ranks,
      dist.launcher() or "?", dist.backend(), r.batch, self.ranks, M.local_batch(r.batch), slice_mode(r)))
  end
end

-- dist.sync_bn: the model's batch norms take the global batch's statistics (several ranks)
function M.sync_bn(self)
  if self.ranks > 1 and self.r.dist and self.r.dist.sync_bn then
    local sb = require "visreg.nn.sync_bn"
    self.synced_norms = sb.convert(self.enc) + sb.convert(self.proj)
  end
end

-- train's options on this rank: rank 0 keeps them; the others write nothing (no run folder, quiet)
function M.run_opts(opts)
  dist.init()
  if dist.rank() == 0 then return opts end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.out, o.force, o.quiet = nil, nil, true
  return o
end

-- the rank's part of the global batch B (an error when B does not split evenly)
function M.local_batch(B)
  local n = dist.size()
  if B % n ~= 0 then
    util.error("batch: %d does not split evenly over %d ranks (choose a batch that is a multiple of %d)", B, n, n)
  end
  return math.floor(B / n)
end

function M.shard(loader)
  if dist.size() > 1 then loader:set_shard(dist.rank(), dist.size()) end
  return loader
end


-- the seed a rank draws its slices from
function M.slice_seed(seed, mode, rank)
  if mode == "per_rank" then return seed + 1000003 * rank end
  return seed
end

-- objective(z, ctx) on the global batch, differentiable with respect to the rank's own z
function M.global_objective(objective, mode)
  local N, rank = dist.size(), dist.rank()
  if N == 1 then return objective end
  return function(z, ctx)
    local zg = dist.all_gather(z:detach(), 1):requires_grad_(true)
    local c = {}
    for k, v in pairs(ctx or {}) do c[k] = v end
    c.seed = M.slice_seed(c.seed or 0, mode, rank)
    local loss, terms = objective(zg, c)
    loss:backward()
    local g = zg:grad()
    if mode == "per_rank" then dist.all_reduce_sum { g } else g = g * N end
    local b = z:size(1)
    local mine = g:narrow(1, rank * b, b):contiguous()
    local s = (z * mine):sum()
    local value = loss:detach()
    if mode == "per_rank" then -- the objective's value: the mean of the ranks' losses (terms stay this rank's)
      value = value:contiguous():clone()
      dist.all_reduce_sum { value }
      value = value * (1 / N)
    end
    return value + (s - s:detach()), terms
  end
end

-- sums every parameter's gradient over the ranks and divides by N. A parameter that got a
-- gradient on some rank only (a branch taken by some samples) counts 0 on the others; one that got
-- none anywhere keeps none, as alone; frozen parameters are left out.
function M.sync_grads(modules)
  local N = dist.size()
  if N == 1 then return end
  local params = {}
  for _, m in ipairs(modules) do
    for _, e in ipairs(m:named_parameters()) do
      if e[2]:requires_grad() then params[#params + 1] = e[2] end
    end
  end
  local has = {}
  for i, p in ipairs(params) do has[i] = p:grad() ~= nil end
  has = dist.any_each(has)
  local grads = {}
  for i, p in ipairs(params) do
    if has[i] then
      local g = p:grad()
      if not g or not g:is_contiguous() then
        g = g and g:contiguous() or p:detach():mul(0)
        p:set_grad(g)
      end
      grads[#grads + 1] = g
    end
  end
  dist.all_reduce_sum(grads)
  for _, g in ipairs(grads) do g:mul_(1 / N) end
end

-- true on every rank when any rank was asked to stop
function M.any(flag) return dist.size() > 1 and dist.any(flag) or flag end

-- the mean over the ranks of a host number
function M.mean(x)
  if dist.size() == 1 then return x end
  return dist.sum_numbers(x) / dist.size()
end

-- an interrupted epoch's sums, saved: the online probe's counts over every rank (in place)
function M.total_sums(sums)
  if dist.size() > 1 then sums.correct, sums.seen = dist.sum_numbers(sums.correct, sums.seen) end
  return sums
end
-- and restored: every rank goes on from the same loss sum; rank 0 alone holds the probe's counts
function M.resumed_sums(self, sums)
  if sums and self.rank > 0 then sums.correct, sums.seen = 0, 0 end
  return sums
end

-- correct / seen over every rank's samples (the online probe's accuracy)
function M.ratio(correct, seen)
  local c = correct:item()
  if dist.size() > 1 then c, seen = dist.sum_numbers(c, seen) end
  return c / seen
end

-- the end of train on this rank: rc 0 or 130 (stopped) leaves the job; any other (an error, its
-- message printed) ends every rank with a message, instead of leaving them waiting for this one
function M.finish(rc)
  if dist.backend() == "none" then return rc end
  if rc ~= 0 and rc ~= 130 and dist.size() > 1 then
    io.stderr:write(string.format("visreg: rank %d of %d stopped with the error above: ending the job\n", dist.rank(),
      dist.size()))
    io.stderr:flush()
    dist.abort(rc)
  end
  dist.finalize()
  return rc
end

return M
