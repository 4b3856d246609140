-- visreg.nn.sync_bn: synchronized batch norm for data-parallel training (recipe dist.sync_bn =
-- true). convert(module) makes every BatchNorm in it, in training, normalize with the statistics
-- of the global batch: each rank sums its samples' x and x^2 per channel, the sums are added over
-- the ranks (a differentiable all-reduce: the gradients that reach them are summed over the ranks
-- in backward), and mean = sum / n, var = sum(x^2) / n - mean^2 (biased; the running variance
-- gets the unbiased n / (n - 1) as PyTorch's). In evaluation, and alone, the module's own forward
-- runs unchanged.
local tensor = require "visreg.tensor"
local core = require "visreg.core"
local dist = require "visreg.dist"
local C = core.C

local M = {}

local function all_reduce_ad(t) return tensor.new(C.vr_dist_all_reduce_sum_ad(t, tensor.outp)) end

-- x as rows x C (channels last), and the function that gives a rows x C result x's layout back
local function as_rows(bn, x)
  local Cn = bn.num_features
  if x:dim() == 2 then return x, function(y) return y end end
  if x:dim() == 4 and bn.channels_last then
    local s = x:shape()
    return x:reshape(-1, Cn), function(y) return y:view(s[1], s[2], s[3], s[4]) end
  end
  if x:dim() == 4 then
    local s = x:shape()
    return x:permute(0, 2, 3, 1):reshape(-1, Cn),
      function(y) return y:view(s[1], s[3], s[4], s[2]):permute(0, 3, 1, 2):contiguous() end
  end
  local s = x:shape() -- N x C x L
  return x:permute(0, 2, 1):reshape(-1, Cn), function(y) return y:view(s[1], s[3], s[2]):permute(0, 2, 1):contiguous() end
end

local function sync_forward(bn, x, residual, relu)
  local Cn = bn.num_features
  local rows, back = as_rows(bn, x)
  local n = rows:size(0) * dist.size()
  local sums = all_reduce_ad(tensor.cat({ rows:sum(0), (rows * rows):sum(0) }, 0))
  local mean = sums:narrow(0, 0, Cn) * (1 / n)
  local var = sums:narrow(0, Cn, Cn) * (1 / n) - mean * mean
  local y = (rows - mean) * (var + bn.eps):rsqrt()
  if bn.weight then y = y * bn.weight + bn.bias end
  y = back(y)
  if residual then y = y + residual end
  if relu then y = y:relu() end
  if bn.running_mean then
    tensor.no_grad(function()
      local m = bn.momentum
      bn.running_mean:copy_(bn.running_mean * (1 - m) + mean:detach() * m)
      bn.running_var:copy_(bn.running_var * (1 - m) + var:detach() * (m * n / math.max(1, n - 1)))
    end)
  end
  return y
end

-- every BatchNorm of module (itself included) synchronized in training; returns the count
function M.convert(module)
  local k = 0
  for _, e in ipairs(module:named_modules()) do
    local m = e[2]
    if m.is_norm and m.num_features and tostring(m.__name):match("^BatchNorm") and not m.synchronized then
      local own = m.forward
      m.synchronized = true
      m.forward = function(self, x, residual, relu)
        if not self.training then return own(self, x, residual, relu) end
        return sync_forward(self, x, residual, relu)
      end
      k = k + 1
    end
  end
  return k
end

return M
