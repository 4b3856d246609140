-- visreg.data_reduce: smaller and poorer training sets for the paper's low-quality-data
-- experiments. A dataset spec's `reduce` table ({ per_class =, long_tail =, low_rank =, seed = })
-- is applied by visreg.data.open:
--   per_class n   each class keeps n training images (0: all), picked at random from seed;
--   long_tail r   then class c keeps floor(n_c * r^(-c/(C-1))) of them (the exponential profile,
--                 as the LT-CIFAR code; the test split stays balanced);
--   low_rank r    train and test images are projected on the top r principal components of the
--                 (reduced) training images and rounded back to bytes (0: unchanged).
local tensor = require "visreg.tensor"
local random = require "visreg.random"
local util = require "visreg.util"

local M = {}

-- images kept per class: class c of C keeps floor(n * r^(-c/(C-1))) of its n (r <= 1: all)
function M.long_tail_counts(counts, ratio)
  local C, out = #counts, {}
  for c = 1, C do
    local k = counts[c]
    if ratio and ratio > 1 and C > 1 then k = math.floor(counts[c] * ratio ^ (-(c - 1) / (C - 1)) + 1e-9) end
    out[c] = math.min(counts[c], k)
  end
  return out
end

-- the indices (0-based, ascending) that per_class and long_tail keep from a list of labels
-- (0-based); the pick within each class is a random permutation drawn from seed
function M.pick(labels, num_classes, o)
  local by = {}
  for c = 1, num_classes do by[c] = {} end
  for i, l in ipairs(labels) do
    if l >= 0 and l < num_classes then local t = by[l + 1]; t[#t + 1] = i - 1 end
  end
  local counts = {}
  for c = 1, num_classes do
    local n = #by[c]
    if o.per_class and o.per_class > 0 then n = math.min(n, o.per_class) end
    counts[c] = n
  end
  counts = M.long_tail_counts(counts, o.long_tail)
  local g = random.Generator(o.seed or 0, 7)
  local keep = {}
  for c = 1, num_classes do
    local list = by[c]
    if counts[c] < #list then
      local perm = random.randperm(#list, { generator = g }):to_list()
      for k = 1, counts[c] do keep[#keep + 1] = list[perm[k] + 1] end
    else
      for k = 1, #list do keep[#keep + 1] = list[k] end
    end
  end
  table.sort(keep)
  return keep, counts
end

-- projects the u8 images of each dataset on the top r principal components of the first one's
-- (the training split's) and returns new datasets with the rounded images
function M.low_rank(datasets, r)
  local data = require "visreg.data"
  local x = datasets[1]:images():float()
  local n = x:size(0)
  local flat = x:reshape { n, -1 }
  local D = flat:size(1)
  if r < 1 or r > D then util.error("data.reduce.low_rank: expected 1..%d components, got %s", D, tostring(r)) end
  local mean = flat:mean(0, true)
  local c = flat - mean
  local cov = c:t():matmul(c) / n
  local _, vecs = cov:double():eigh() -- ascending eigenvalues
  local V = vecs:narrow(1, D - r, r):float():contiguous() -- D x r
  local out = {}
  for i, ds in ipairs(datasets) do
    local xi = ds:images()
    local shape = xi:shape()
    local fi = xi:float():reshape { xi:size(0), -1 } - mean
    local proj = fi:matmul(V):matmul(V:t()) + mean
    local u8 = (proj:clamp(0, 255) + 0.5):clamp(0, 255):byte():reshape(shape):contiguous()
    local d = data.from_tensors(u8, ds:labels(), ds:num_classes())
    d.classes = ds.classes
    out[i] = d
  end
  return out
end

-- the reduced train and test datasets for a spec's reduce table
function M.apply(o, train, test)
  if type(o) ~= "table" then return train, test end
  if (o.per_class or 0) > 0 or (o.long_tail or 0) > 1 then
    local keep = M.pick(train:labels():to_list(), train:num_classes(), o)
    if #keep < train:count() then train = train:subset(keep) end
  end
  if (o.low_rank or 0) > 0 then
    local r = M.low_rank({ train, test }, o.low_rank)
    train, test = r[1], r[2]
  end
  return train, test
end

return M
