-- the embedding metrics against values known for fixed inputs: exact small matrices, isotropic
-- Gaussians (RankMe ~ D, Gaussianity ~ 0), rank-r embeddings (RankMe ~ r), a known power law
-- (alpha-ReQ recovers alpha), identical and rotated embeddings (CKA 1), views of well separated
-- samples (LiDAR ~ D); and the terminal and SVG plots' geometry
local tap = require "tap"
local vr = require "visreg"
local m = vr.metrics
local plot = require "visreg.plot"

vr.manual_seed(7)
local function gauss(n, d) return vr.randn(n, d, { dtype = "f64" }) end

-- exact: four points, covariance diag(2/3, 8/3)
local z = vr.tensor({ { 1, 0 }, { -1, 0 }, { 0, 2 }, { 0, -2 } }, { dtype = "f64" })
local s = m.spectrum(z)
tap.all_near(s.eigenvalues, { 8 / 3, 2 / 3 }, 1e-12, "spectrum: the covariance eigenvalues, descending")
tap.all_near(s.explained, { 0.8, 0.2 }, 1e-12, "spectrum: explained shares")
tap.eq(s.dims_90, 2, "spectrum: two dims hold 90%")
local st = m.stats(z)
tap.near(st.std_max, math.sqrt(8 / 3), 1e-12, "stats: the largest std")
tap.near(st.norm_mean, 1.5, 1e-12, "stats: the mean row norm")
tap.eq(st.dead_dims, 0, "stats: no dead dimension")
tap.eq(m.stats(vr.tensor({ { 1, 5 }, { 2, 5 }, { 3, 5 } }, { dtype = "f64" })).dead_dims, 1, "stats: a constant dimension is dead")

-- isotropic Gaussian
local D = 32
local g = gauss(8000, D)
local rk = m.rankme(g)
tap.ok(rk > 0.97 * D and rk <= D, "rankme of an isotropic Gaussian is about D", rk)
local ga = m.gaussianity(g)
tap.ok(ga.w1 < 0.03 and math.abs(ga.kurtosis) < 0.1 and math.abs(ga.kurtosis_dims) < 0.1,
  "gaussianity of a Gaussian is about 0 (W1, kurtosis)", string.format("%g %g %g", ga.w1, ga.kurtosis, ga.kurtosis_dims))
tap.eq(#ga.worst, 5, "gaussianity lists the worst slices")
local gu = m.gaussianity(vr.rand(8000, D, { dtype = "f64" }))
tap.ok(math.abs(gu.kurtosis_dims + 1.2) < 0.05, "uniform dimensions: excess kurtosis -1.2", gu.kurtosis_dims)
-- four clusters: every projection is a mixture of four narrow peaks, far from a Gaussian
local centres = gauss(4, D) * 3
local cluster = {}
for i = 1, 8000 do cluster[i] = (i - 1) % 4 end
local idx = vr.tensor(cluster, { dtype = "i64" })
local gc = m.gaussianity(centres:index_select(0, idx) + gauss(8000, D) * 0.1)
tap.ok(gc.w1 > 10 * ga.w1, "clustered embeddings are far from Gaussian", string.format("%g vs %g", gc.w1, ga.w1))
tap.ok(m.alpha_req(g) < 0.3, "alpha-ReQ of an isotropic Gaussian is near 0", m.alpha_req(g))

-- rank r, rotated into D dims
local r = 5
local q = vr.linalg.svd(gauss(D, D)) -- a random orthogonal matrix
local low = vr.cat({ gauss(8000, r), vr.zeros(8000, D - r, { dtype = "f64" }) }, 1):matmul(q)
local rr = m.rankme(low)
tap.ok(math.abs(rr - r) < 0.25, "rankme of a rank-5 embedding is about 5", rr)
tap.eq(m.spectrum(low).dims_99, r, "the spectrum of a rank-5 embedding: 5 dims hold 99%")

-- a power law: covariance eigenvalues k^-alpha
for _, alpha in ipairs { 0.8, 1.5 } do
  local w = {}
  for k = 1, D do w[k] = k ^ (-alpha / 2) end
  local pl = gauss(40000, D) * vr.tensor(w, { dtype = "f64" })
  tap.near(m.alpha_req(pl), alpha, 0.06, "alpha-ReQ recovers alpha = " .. alpha)
end

-- CKA
tap.near(m.cka(g, g), 1, 1e-12, "CKA of an embedding with itself is 1")
tap.near(m.cka(g, g:matmul(q) * 3), 1, 1e-9, "CKA is 1 under rotation and scale")
tap.ok(m.cka(g, gauss(8000, D)) < 0.01, "CKA of independent embeddings is near 0", m.cka(g, gauss(8000, D)))

-- alignment and uniformity
tap.near(m.alignment(g, g * 2), 0, 1e-12, "alignment of identical directions is 0")
tap.near(m.alignment(g, -g), 4, 1e-12, "alignment of opposite directions is 4")
tap.near(m.uniformity(vr.ones(100, 8, { dtype = "f64" })), 0, 1e-9, "uniformity of a collapsed embedding is 0")
local un = m.uniformity(gauss(2000, 64))
tap.ok(un < -3.8 and un > -4.1, "uniformity of a 64-dim Gaussian is about -4 (|a - b|^2 ~ 2)", un)

-- LiDAR: views = the sample's point + small noise
local N, V = 2000, 4
local centers = gauss(N, 16)
local views = {}
for v = 1, V do views[v] = centers + gauss(N, 16) * 0.05 end
local li = m.lidar(vr.stack(views, 0))
tap.ok(li > 15 and li <= 16, "LiDAR of separable isotropic samples is about D", li)
local flat = vr.cat({ gauss(N, 1), vr.zeros(N, 15, { dtype = "f64" }) }, 1)
for v = 1, V do views[v] = flat + gauss(N, 16) * 0.05 end
local l1 = m.lidar(vr.stack(views, 0))
tap.ok(l1 < 1.5, "LiDAR of samples that differ in one direction is about 1", l1)

-- PCA
local proj, dirs, expl = m.pca(z, 1)
tap.all_near(expl, { 0.8 }, 1e-12, "pca: the first component's share")
tap.near(math.abs(dirs:get(1, 0)), 1, 1e-12, "pca: the first direction is the y axis")
tap.near(proj:var(0):item(), 8 / 3, 1e-12, "pca: the projection keeps the component's variance")
tap.raises(function() m.rankme(vr.zeros(5)) end, "expected an N x D tensor", "a 1-D input is refused")

-- plots
local t = plot.ticks(0, 1, 5)
tap.eq(table.concat(t, ","), "0,0.2,0.4,0.6,0.8,1", "ticks: 1, 2, 5 steps")
tap.eq(table.concat(plot.ticks(-3.3, 17, 4), ","), "0,5,10,15", "ticks inside the range")
tap.eq(table.concat(plot.log_ticks(0.003, 20), ","), "0.01,0.1,1,10", "log ticks: powers of ten")
local sc = plot.scale(1, 100, 0, 200, true)
tap.near(sc(10), 100, 1e-12, "a log scale maps 10 to the middle of [1, 100]")
local txt = plot.line({ 1, 4, 9, 16 }, { title = "squares" })
tap.ok(txt:find("squares", 1, true) and txt:find("\226\160", 1, true) and txt:find("16", 1, true), "a braille line plot", txt)
local svg = plot.svg({ { y = { 1, 0 / 0, 3, 4 }, label = "a" } }, { log_y = true })
tap.ok(svg:find("<path d=\"M", 1, true) and not svg:find("nan", 1, true) and select(2, svg:gsub(" M", "")) >= 1,
  "an SVG path leaves NaN out (a gap, never 'nan')", svg)
print(plot.hist(g:select(1, 0), { title = "a Gaussian column" }))

os.exit(tap.done(), true)
