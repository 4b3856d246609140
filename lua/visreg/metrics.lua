-- visreg.metrics: health of embeddings during training: the mean per-dim standard deviation and
-- the effective rank (RankMe: exp of the entropy of the normalised singular values).
local ffi = require "ffi"
local tensor = require "visreg.tensor"

local M = {}

-- mean over dims of the std over the batch of z (B x D)
function M.embedding_std(z)
  return tensor.no_grad(function() return z:std(0, 1):mean():item() end)
end

-- eigenvalues of a symmetric n x n matrix (a 0-based double array, destroyed) by cyclic Jacobi
function M.sym_eigenvalues(a, n)
  local function idx(i, j) return i * n + j end
  for _ = 1, 60 do
    local off = 0
    for i = 0, n - 1 do for j = i + 1, n - 1 do off = off + a[idx(i, j)] ^ 2 end end
    if off < 1e-22 then break end
    for p = 0, n - 2 do
      for q = p + 1, n - 1 do
        local apq = a[idx(p, q)]
        if math.abs(apq) > 1e-300 then
          local app, aqq = a[idx(p, p)], a[idx(q, q)]
          local theta = (aqq - app) / (2 * apq)
          local t = (theta >= 0 and 1 or -1) / (math.abs(theta) + math.sqrt(theta * theta + 1))
          local c = 1 / math.sqrt(t * t + 1)
          local s = t * c
          for k = 0, n - 1 do
            local akp, akq = a[idx(k, p)], a[idx(k, q)]
            a[idx(k, p)] = c * akp - s * akq
            a[idx(k, q)] = s * akp + c * akq
          end
          for k = 0, n - 1 do
            local apk, aqk = a[idx(p, k)], a[idx(q, k)]
            a[idx(p, k)] = c * apk - s * aqk
            a[idx(q, k)] = s * apk + c * aqk
          end
        end
      end
    end
  end
  local ev = {}
  for i = 0, n - 1 do ev[i + 1] = a[idx(i, i)] end
  return ev
end

-- RankMe effective rank of z (B x D): exp(-sum p log p), p = s / sum(s) over singular values s.
-- Uses the smaller of the D x D and B x B Gram matrices; nil when both exceed max_dim (512).
function M.effective_rank(z, max_dim)
  max_dim = max_dim or 512
  local B, D = z:size(0), z:size(1)
  local n = math.min(B, D)
  if n > max_dim then return nil end
  local g = tensor.no_grad(function()
    local zz = z:detach():to("cpu"):to("f64") -- f64 is a CPU dtype
    if D <= B then return zz:t():matmul(zz) end
    return zz:matmul(zz:t())
  end)
  local buf = tensor.host_doubles(g)
  local a = ffi.new("double[?]", n * n)
  ffi.copy(a, buf, n * n * 8)
  local ev = M.sym_eigenvalues(a, n)
  local s, total = {}, 0
  for i, e in ipairs(ev) do s[i] = math.sqrt(math.max(e, 0)); total = total + s[i] end
  if total <= 0 then return 0 end
  local h = 0
  for _, v in ipairs(s) do
    local p = v / total + 1e-12
    h = h - p * math.log(p)
  end
  return math.exp(h)
end

return M
