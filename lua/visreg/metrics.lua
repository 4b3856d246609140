-- visreg.metrics: numbers that describe embeddings. Each takes an N x D tensor (any device and
-- float dtype; computed in f64 on the CPU) and returns plain Lua numbers and tables:
--
--   stats(z)             per-dimension mean and std summary, dead dimensions, mean norm
--   spectrum(z)          covariance eigenvalues (descending), explained and cumulative variance
--   rankme(z)            RankMe (Garrido et al., ICML 2023): exp of the entropy of the normalised
--                        singular values of z; D for isotropic data, r for rank r
--   alpha_req(z)         alpha-ReQ (Agrawal et al., NeurIPS 2022): the decay alpha of the
--                        covariance eigenvalues, lambda_k ~ k^-alpha, fitted in log-log
--   lidar(zv)            LiDAR (Thilak et al., ICLR 2024): effective rank of the LDA matrix that
--                        separates each sample's augmented views (zv: V x N x D) from the others
--   gaussianity(z)       sliced 1-D Wasserstein-1 distance of z's standardised projections to
--                        N(0, 1) over K random directions (0 for Gaussian data), the worst
--                        slices, excess kurtosis
--   alignment(a, b)      Wang & Isola (ICML 2020): mean |a_i - b_i|^2 of L2-normalised pairs
--   uniformity(z)        Wang & Isola: log mean exp(-2 |z_i - z_j|^2) over pairs of normalised rows
--   cka(x, y)            linear CKA (Kornblith et al., ICML 2019) of two embeddings of the same rows
--   pca(z, k)            z projected on its k principal directions
--   embedding_std(z), effective_rank(z)   what the trainer logs each epoch
local tensor = require "visreg.tensor"
local linalg = require "visreg.linalg"
local lossm = require "visreg.loss"

local M = {}

-- the columns of x in reverse order
local function reverse_columns(x)
  local k = x:size(1)
  return x:index_select(1, tensor.arange(k - 1, -1, -1, { dtype = "i64" }))
end

local function no_grad(fn) return tensor.no_grad(fn) end

-- f64 CPU copy without a graph
local function f64(z)
  return no_grad(function()
    local x = tensor.is_tensor(z) and z or z.z -- an embedding object gives its projector outputs
    x = x:detach()
    if x:device() ~= "cpu" then x = x:to("cpu") end
    if x:dtype() ~= "f64" then x = x:to("f64") end
    return x
  end)
end
M.f64 = f64

local function need_2d(z, what)
  if z:dim() ~= 2 then error(string.format("%s: expected an N x D tensor, got %s", what, z:shape_str()), 3) end
  if z:size(0) < 2 then error(string.format("%s: expected at least 2 rows, got %d", what, z:size(0)), 3) end
end

local function list(t) return t:to_list() end

-- z minus its column means
local function centered(z) return z - z:mean(0, true) end

-- eigenvalues of the covariance, descending (a Lua list), clamped at 0
local function cov_eigenvalues(z)
  local zc = centered(z)
  local cov = zc:t():matmul(zc) / (z:size(0) - 1)
  local ev = list(linalg.eigvalsh(cov))
  local out = {}
  for i = #ev, 1, -1 do out[#out + 1] = math.max(ev[i], 0) end
  return out
end

-- exp(entropy) of a list of non-negative weights (Roy & Vetterli's effective rank); eps as RankMe's
local function effective_rank_of(w, eps)
  local total = 0
  for _, x in ipairs(w) do total = total + x end
  if total <= 0 then return 0 end
  local h = 0
  for _, x in ipairs(w) do
    local p = x / total + (eps or 1e-7)
    h = h - p * math.log(p)
  end
  return math.exp(h)
end

---------------------------------------------------------------- summaries
function M.stats(z)
  z = f64(z)
  need_2d(z, "stats")
  local mean, std = list(z:mean(0)), list(z:std(0))
  local sorted = {}
  local sum_abs, max_std = 0, 0
  for i, s in ipairs(std) do
    sorted[i] = s
    sum_abs = sum_abs + math.abs(mean[i])
    max_std = math.max(max_std, s)
  end
  table.sort(sorted)
  local dead = 0
  for _, s in ipairs(std) do if s <= 1e-4 * math.max(max_std, 1e-300) then dead = dead + 1 end end
  local norms = z:norm(2, 1)
  return { n = z:size(0), d = z:size(1), mean_abs_mean = sum_abs / #mean, std_min = sorted[1],
    std_median = sorted[math.floor((#sorted + 1) / 2)], std_max = sorted[#sorted], std_mean = z:std(0):mean():item(),
    dead_dims = dead, norm_mean = norms:mean():item() }
end

function M.spectrum(z)
  z = f64(z)
  need_2d(z, "spectrum")
  local ev = cov_eigenvalues(z)
  local total = 0
  for _, e in ipairs(ev) do total = total + e end
  local ratio, cum, acc = {}, {}, 0
  for i, e in ipairs(ev) do
    ratio[i] = total > 0 and e / total or 0
    acc = acc + ratio[i]
    cum[i] = acc
  end
  -- the fewest components that explain a share of the variance
  local function dims_for(share)
    for i, c in ipairs(cum) do if c >= share - 1e-12 then return i end end
    return #cum
  end
  return { eigenvalues = ev, explained = ratio, cumulative = cum, total = total,
    dims_90 = dims_for(0.90), dims_95 = dims_for(0.95), dims_99 = dims_for(0.99) }
end

function M.rankme(z, eps)
  z = f64(z)
  need_2d(z, "rankme")
  return effective_rank_of(list(linalg.svdvals(z)), eps or 1e-7)
end

-- alpha-ReQ: minus the slope of log(lambda_k) against log(k) by least squares, over the
-- eigenvalues above 1e-12 of the largest (k = 1 .. r)
function M.alpha_req(z)
  z = f64(z)
  need_2d(z, "alpha_req")
  local ev = cov_eigenvalues(z)
  local xs, ys = {}, {}
  for k, e in ipairs(ev) do
    if e > 1e-12 * ev[1] and e > 0 then xs[#xs + 1] = math.log(k); ys[#ys + 1] = math.log(e) end
  end
  local n = #xs
  if n < 2 then return nil end
  local mx, my = 0, 0
  for i = 1, n do mx, my = mx + xs[i], my + ys[i] end
  mx, my = mx / n, my / n
  local sxy, sxx = 0, 0
  for i = 1, n do sxy, sxx = sxy + (xs[i] - mx) * (ys[i] - my), sxx + (xs[i] - mx) ^ 2 end
  return -sxy / sxx
end

-- LiDAR: zv is V x N x D (V views of each of N samples; each sample is a class of LDA).
-- Sigma_b: covariance of the per-sample means; Sigma_w: mean covariance of the views around their
-- sample's mean, + delta I; the effective rank of Sigma_w^-1/2 Sigma_b Sigma_w^-1/2.
function M.lidar(zv, o)
  o = o or {}
  if tensor.is_tensor(zv) == false and type(zv) == "table" and zv.views then zv = zv.views end
  zv = f64(zv)
  if zv:dim() ~= 3 or zv:size(0) < 2 then
    error("lidar: expected V x N x D embeddings of V >= 2 augmented views (embed(..., {views = 8}))", 2)
  end
  local V, N, D = zv:size(0), zv:size(1), zv:size(2)
  local delta = o.delta or 1e-4
  local mu_i = zv:mean(0)                        -- N x D
  local mb = centered(mu_i)
  local sb = mb:t():matmul(mb) / N
  local w = (zv - mu_i:unsqueeze(0)):reshape(V * N, D)
  local sw = w:t():matmul(w) / (V * N)
  for i = 0, D - 1 do sw:set(i, i, sw:get(i, i) + delta) end
  local vals, vecs = linalg.eigh(sw)
  local inv_sqrt = vecs:matmul((vals:rsqrt():unsqueeze(1)) * vecs:t())
  local m = inv_sqrt:matmul(sb):matmul(inv_sqrt)
  local ev = list(linalg.eigvalsh((m + m:t()) * 0.5))
  for i, e in ipairs(ev) do ev[i] = math.max(e, 0) end
  return effective_rank_of(ev, 1e-7)
end

-- Gaussianity: each column standardised, projected on K unit directions (Philox, seed), each
-- projection standardised and sorted, and compared with the N Gaussian quantiles
-- sqrt(2) erfinv(2i / (N + 1) - 1): W1 = mean |sorted - quantile|. Also the excess kurtosis of
-- the projections and of the dimensions (0 for a Gaussian).
function M.gaussianity(z, o)
  o = o or {}
  z = f64(z)
  need_2d(z, "gaussianity")
  local N, D = z:size(0), z:size(1)
  local K = o.slices or 256
  local zs = centered(z) / (z:std(0, 1, true) + 1e-12)
  local dirs = lossm.draw_slices(D, K, { seed = o.seed or 0, dtype = "f64" }) -- the regularizers' directions
  local p = zs:matmul(dirs)
  p = centered(p)
  p = p / (p:std(0, 0, true) + 1e-12)
  local sorted = p:sort(0)
  local q = lossm.gauss_quantiles(N, { dtype = "f64" }):unsqueeze(1)
  local w1 = list((sorted - q):abs():mean(0))
  local order = {}
  for k = 1, K do order[k] = k end
  table.sort(order, function(a, b) return w1[a] > w1[b] end)
  local worst, total = {}, 0
  for _, x in ipairs(w1) do total = total + x end
  for i = 1, math.min(o.worst or 5, K) do worst[i] = { slice = order[i] - 1, w1 = w1[order[i]] } end
  local kurt_p = ((p ^ 4):mean(0) - 3):mean():item()
  local kurt_d = ((zs ^ 4):mean(0) / ((zs ^ 2):mean(0) ^ 2) - 3):mean():item()
  return { w1 = total / K, worst = worst, slices = K, kurtosis = kurt_p, kurtosis_dims = kurt_d }
end

local function normalized(z) return z / (z:norm(2, 1, true) + 1e-12) end

function M.alignment(a, b, alpha)
  a, b = normalized(f64(a)), normalized(f64(b))
  return ((a - b):norm(2, 1) ^ (alpha or 2)):mean():item()
end

-- over every pair of the first n_max rows (default 4096: the pairs' Gram matrix stays small)
function M.uniformity(z, t, n_max)
  z = f64(z)
  need_2d(z, "uniformity")
  n_max = n_max or 4096
  if z:size(0) > n_max then z = z:narrow(0, 0, n_max) end
  local x = normalized(z)
  local n = x:size(0)
  local sq = (x:matmul(x:t()) * -2 + 2):clamp(0) -- |a - b|^2 of unit rows
  local e = (sq * -(t or 2)):exp()
  -- off-diagonal mean: the diagonal holds exp(0) = 1 for each of the n rows
  local mean = (e:sum():item() - n) / (n * (n - 1))
  return math.log(mean)
end

function M.cka(x, y)
  x, y = centered(f64(x)), centered(f64(y))
  if x:size(0) ~= y:size(0) then error(string.format("cka: expected the same rows, got %d and %d", x:size(0), y:size(0)), 2) end
  local xy = x:t():matmul(y):square():sum():item()
  local xx = x:t():matmul(x):square():sum():sqrt():item()
  local yy = y:t():matmul(y):square():sum():sqrt():item()
  return xy / (xx * yy)
end

-- z (N x D) on its k principal directions: N x k (f64), the directions (D x k), explained shares
function M.pca(z, k)
  z = f64(z)
  need_2d(z, "pca")
  k = math.min(k or 2, z:size(1))
  local zc = centered(z)
  local vals, vecs = linalg.eigh(zc:t():matmul(zc) / (z:size(0) - 1))
  local D = z:size(1)
  local top = reverse_columns(vecs:narrow(1, D - k, k))
  local ev, total = list(vals), 0
  for _, e in ipairs(ev) do total = total + math.max(e, 0) end
  local explained = {}
  for i = 1, k do explained[i] = math.max(ev[D - i + 1], 0) / total end
  return zc:matmul(top), top, explained
end

---------------------------------------------------------------- logged during training
-- mean over dims of the std over the batch of z (B x D)
function M.embedding_std(z)
  return no_grad(function() return z:std(0, 1):mean():item() end)
end

-- RankMe of a training batch; nil past max_dim (512) in both B and D, to keep the epoch line cheap
function M.effective_rank(z, max_dim)
  if math.min(z:size(0), z:size(1)) > (max_dim or 512) then return nil end
  return M.rankme(z, 1e-12)
end

return M
