-- visreg.linalg: decompositions of a 2-D f32 or f64 matrix, as torch.linalg's, differentiable
-- (the gradients assume distinct eigenvalues or singular values). CPU tensors go to LAPACK
-- (OpenBLAS); CUDA tensors are decomposed on the host and the results copied back to the device.
--   values, vectors = vr.linalg.eigh(a)   a symmetric (only its lower triangle is read); values
--                                         ascending, the eigenvectors as the columns of vectors
--   values = vr.linalg.eigvalsh(a)
--   U, S, Vh = vr.linalg.svd(a)           reduced: a (m x n) = U diag(S) Vh, k = min(m, n),
--                                         U m x k, S k (descending), Vh k x n
--   S = vr.linalg.svdvals(a)
-- The same as tensor methods: a:eigh(), a:eigvalsh(), a:svd(), a:svdvals().
local tensor = require "visreg.tensor"
local util = require "visreg.util"

local M = {}

local function need(a)
  if not tensor.is_tensor(a) or a == nil then util.error("a: expected a tensor, got %s", type(a)) end
  return a
end

function M.eigh(a) return need(a):eigh() end
function M.eigvalsh(a) return need(a):eigvalsh() end
function M.svd(a) return need(a):svd() end
function M.svdvals(a) return need(a):svdvals() end

return M
