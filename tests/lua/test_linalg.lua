-- vr.linalg (eigh, eigvalsh, svd, svdvals) and the tensor methods: known values, reconstruction,
-- shapes, gradients through the decompositions, errors carrying the C message, CUDA tensors
local tap = require "tap"
local vr = require "visreg"

local r2 = math.sqrt(2)
local a = vr.tensor({ { 2, -1, 0 }, { -1, 2, -1 }, { 0, -1, 2 } }, { dtype = "f64" })
local L, V = vr.linalg.eigh(a)
tap.all_near(L:to_list(), { 2 - r2, 2, 2 + r2 }, 1e-12, "eigh: values of the second difference matrix, ascending")
tap.eq(V:shape_str(), "[3, 3]", "eigh: vectors are n x n")
tap.near(math.abs(V:get(1, 1)), 0, 1e-12, "eigh: the middle eigenvector is (1, 0, -1) / sqrt 2")
local recon = (V * L:unsqueeze(0)):matmul(V:t())
tap.all_near(recon:to_list(), a:to_list(), 1e-12, "eigh: V diag(L) V^T = a")
tap.all_near(vr.linalg.eigvalsh(a):to_list(), L:to_list(), 1e-12, "eigvalsh gives the same values")
local L2 = a:eigh()
tap.all_near(L2:to_list(), L:to_list(), 0, "a:eigh() is vr.linalg.eigh(a)")
tap.all_near(a:float():eigvalsh():to_list(), L:to_list(), 1e-5, "eigh in f32")
tap.eq(a:float():eigvalsh():dtype(), "f32", "f32 in, f32 out")

local b = vr.tensor({ { 3, 0 }, { 4, 5 }, { 0, 0 } }, { dtype = "f64" })
local U, S, Vh = vr.linalg.svd(b)
tap.ok(U:shape_str() == "[3, 2]" and S:shape_str() == "[2]" and Vh:shape_str() == "[2, 2]", "svd: reduced shapes")
tap.all_near(S:to_list(), { math.sqrt(45), math.sqrt(5) }, 1e-12, "svd: singular values, descending")
tap.all_near(((U * S:unsqueeze(0)):matmul(Vh)):to_list(), b:to_list(), 1e-12, "svd: U diag(S) Vh = a")
tap.all_near(vr.linalg.svdvals(b):to_list(), S:to_list(), 1e-12, "svdvals gives the same values")
local w = b:t()
local U3, S3, Vh3 = w:svd()
tap.ok(U3:shape_str() == "[2, 2]" and Vh3:shape_str() == "[2, 3]", "a:svd() of a wide transposed view")
tap.all_near(S3:to_list(), S:to_list(), 1e-12, "singular values of the transpose are the same")
tap.all_near(w:svdvals():to_list(), S:to_list(), 1e-12, "a:svdvals()")

-- gradients: d sum(L) / dA = I, d sum(S) / dx = U Vh
local x = vr.tensor({ { 4, 1, 0 }, { 1, 3, 1 }, { 0, 1, 2 } }, { dtype = "f64", requires_grad = true })
local lx = x:eigvalsh()
lx:sum():backward()
tap.all_near(x:grad():to_list(), { 1, 0, 0, 0, 1, 0, 0, 0, 1 }, 1e-12, "eigvalsh backward: d trace / dA = I")
local y = vr.tensor({ { 1, 2 }, { 3, 4 }, { 5, 7 } }, { dtype = "f64", requires_grad = true })
local Uy, Sy, Vhy = y:svd()
tap.eq(Sy:grad_fn(), "svd", "svd outputs record a node")
Sy:sum():backward()
tap.all_near(y:grad():to_list(), Uy:matmul(Vhy):to_list(), 1e-12, "svd backward: d sum(S) / dx = U Vh")
y:zero_grad()
local Uy2, Sy2, Vhy2 = y:svd()
local r = (Uy2 * Sy2:unsqueeze(0)):matmul(Vhy2)
r:backward(vr.ones(3, 2, { dtype = "f64" }))
tap.all_near(y:grad():to_list(), { 1, 1, 1, 1, 1, 1 }, 1e-10, "svd backward through U, S and Vh: U diag(S) Vh is x")

-- errors
tap.raises(function() vr.linalg.eigh(vr.zeros(2, 3)) end, { "vr_eigh", "a: expected a square matrix, got [2, 3]" },
  "eigh of a non-square matrix raises the C message")
tap.raises(function() vr.linalg.svd(vr.zeros(2, 3, 4)) end, { "vr_svd", "2-D" }, "svd of a 3-D tensor")
tap.raises(function() vr.linalg.svdvals(vr.zeros(2, 2, { dtype = "i64" })) end, "f32 or f64", "svd of an i64 matrix")
tap.raises(function() vr.linalg.eigh(vr.tensor({ { 1, 0 }, { 0 / 0, 1 } })) end, "finite", "eigh of a NaN matrix")
tap.raises(function() vr.linalg.eigh({}) end, "a: expected a tensor", "vr.linalg.eigh of a table")

if vr.cuda_available() then
  local ad = a:float():cuda()
  local Ld, Vd = ad:eigh()
  tap.ok(Ld:is_cuda() and Vd:is_cuda(), "eigh of a CUDA tensor gives CUDA tensors")
  tap.all_near(Ld:cpu():to_list(), L:to_list(), 1e-5, "eigh on CUDA (through the host)")
  local Ud, Sd, Vhd = b:float():cuda():svd()
  tap.ok(Ud:is_cuda() and Sd:is_cuda() and Vhd:is_cuda(), "svd of a CUDA tensor gives CUDA tensors")
  tap.all_near(Sd:cpu():to_list(), S:to_list(), 1e-5, "svd on CUDA (through the host)")
else
  tap.skip("linalg on CUDA", "no CUDA device")
end

os.exit(tap.done(), true)
