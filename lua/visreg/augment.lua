-- visreg.augment: augmentation specs (recipe data) and their C pipelines. A view's pipeline is a
-- list of specs, e.g. { aug.random_resized_crop{scale={0.3, 1}}, aug.hflip{p=0.5}, aug.normalize{...} };
-- build(list) turns it into a vr_pipeline. Images are f32 in [0, 1]; randomness is a pure
-- function of (seed, epoch, sample, view), so views do not depend on the thread count.
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local C = core.C
local check = core.check

local M = {}

local function spec(kind, t, defaults, rules) return util.spec("vr.augment." .. kind, kind, t, defaults, rules) end
local function range(v, what)
  if type(v) == "number" then return v, v end
  if type(v) ~= "table" or #v ~= 2 then util.error("vr.augment: %s: expected {low, high}, got %s", what, type(v)) end
  return v[1], v[2]
end

-- the values each step accepts (checked when the step is made and again after --set), as the C
-- pipeline (core/data/augment.c) would refuse them when the data loads
local P = { min = 0, max = 1 }
local SIZE = { size = true, optional = true }
local AREA = { pair = true, min = 0, max = 1 }
local RATIO = { pair = true, gt = 0 }
local NONNEG = { min = 0 }

-- random resized crop to the view's size (or size); scale: area fraction, ratio: aspect ratio range
function M.random_resized_crop(t)
  return spec("random_resized_crop", t, { scale = { 0.08, 1 }, ratio = { 3 / 4, 4 / 3 }, size = false, p = 1 },
    { scale = AREA, ratio = RATIO, size = SIZE, p = P })
end
function M.resize(t) return spec("resize", t, { size = false }, { size = SIZE }) end
function M.hflip(t) return spec("hflip", t, { p = 0.5 }, { p = P }) end
-- colour jitter as torchvision (saturation and hue act on 3-channel images only)
function M.jitter(t)
  return spec("jitter", t, { brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1, p = 0.8 },
    { brightness = NONNEG, contrast = NONNEG, saturation = NONNEG, hue = { min = 0, max = 0.5 }, p = P })
end
function M.grayscale(t) return spec("grayscale", t, { p = 0.2 }, { p = P }) end
function M.blur(t)
  return spec("blur", t, { sigma = { 0.1, 2 }, kernel_size = 0, p = 0.5 }, { sigma = { pair = true, gt = 0, max = 40 },
    kernel_size = { desc = "0 (automatic) or an odd size up to 255",
      test = function(v) return v == 0 or (type(v) == "number" and v % 2 == 1 and v <= 255) end }, p = P })
end
function M.solarize(t) return spec("solarize", t, { threshold = 0.5, p = 0.2 }, { threshold = {}, p = P }) end
function M.erase(t)
  return spec("erase", t, { scale = { 0.02, 0.33 }, ratio = { 0.3, 3.3 }, value = 0, p = 0.5 },
    { scale = AREA, ratio = RATIO, value = {}, p = P })
end
function M.noise(t) return spec("noise", t, { std = 0.1, p = 1 }, { std = NONNEG, p = P }) end
-- (x - mean) / std; numbers, or one value per channel
function M.normalize(t)
  return spec("normalize", t, { mean = 0, std = 1 }, { mean = { list = true }, std = { list = true, gt = 0 } })
end

local pp = ffi.new("vr_pipeline *[1]")

local function size_of(s)
  if not s then return 0, 0 end
  if type(s) == "number" then return s, s end
  return s[1], s[2]
end

local adders = {
  random_resized_crop = function(p, s)
    local lo, hi = range(s.scale, "scale")
    local rlo, rhi = range(s.ratio, "ratio")
    local h, w = size_of(s.size)
    return C.vr_pipeline_add_crop(p, lo, hi, rlo, rhi, h, w, s.p)
  end,
  resize = function(p, s)
    local h, w = size_of(s.size)
    if h == 0 then util.error("vr.augment.resize: size is required") end
    return C.vr_pipeline_add_resize(p, h, w)
  end,
  hflip = function(p, s) return C.vr_pipeline_add_hflip(p, s.p) end,
  jitter = function(p, s) return C.vr_pipeline_add_jitter(p, s.brightness, s.contrast, s.saturation, s.hue, s.p) end,
  grayscale = function(p, s) return C.vr_pipeline_add_grayscale(p, s.p) end,
  blur = function(p, s)
    local lo, hi = range(s.sigma, "sigma")
    return C.vr_pipeline_add_blur(p, lo, hi, s.kernel_size, s.p)
  end,
  solarize = function(p, s) return C.vr_pipeline_add_solarize(p, s.threshold, s.p) end,
  erase = function(p, s)
    local lo, hi = range(s.scale, "scale")
    local rlo, rhi = range(s.ratio, "ratio")
    return C.vr_pipeline_add_erase(p, lo, hi, rlo, rhi, s.value, s.p)
  end,
  noise = function(p, s) return C.vr_pipeline_add_noise(p, s.std, s.p) end,
  normalize = function(p, s)
    local mean = type(s.mean) == "table" and s.mean or { s.mean }
    local std = type(s.std) == "table" and s.std or { s.std }
    if #mean ~= #std then util.error("vr.augment.normalize: mean and std have %d and %d values", #mean, #std) end
    local m = ffi.new("double[?]", #mean, mean)
    local d = ffi.new("double[?]", #std, std)
    return C.vr_pipeline_add_normalize(p, #mean, m, d)
  end,
}

-- a C pipeline (garbage-collected) from a list of specs
function M.build(list)
  if type(list) ~= "table" then util.error("augment: expected a list of vr.augment.* steps, got %s", type(list)) end
  check(C.vr_pipeline_new(pp))
  local p = ffi.gc(pp[0], C.vr_pipeline_free)
  pp[0] = nil
  for i, s in ipairs(list) do
    local add = type(s) == "table" and adders[s.kind]
    if not add then util.error("augment: step %d: expected a vr.augment.* step, got %s", i, type(s) == "table" and tostring(s.kind) or type(s)) end
    check(add(p, s))
  end
  return p
end

-- the pipeline for evaluation: the resize to size (when given) and the list's normalize steps
function M.eval_pipeline(list, size)
  local steps = {}
  if size then steps[#steps + 1] = M.resize { size = size } end
  for _, s in ipairs(list or {}) do
    if s.kind == "normalize" then steps[#steps + 1] = s end
  end
  return M.build(steps)
end

-- apply(list_or_pipeline, images, {size=, seed=, epoch=, sample=, view=, ids=}): runs a pipeline on a
-- C x H x W image or N x C x H x W images (u8 or f32, on the CPU or CUDA: the result is on the same
-- device, with the same values); image k is sample sample + k, or ids[k] when ids (an i64 tensor or
-- a list, one id per image) is given; f32 result
function M.apply(pl, images, o)
  o = o or {}
  local p = type(pl) == "table" and M.build(pl) or pl
  local h, w = size_of(o.size)
  if o.ids ~= nil then
    local ids = o.ids
    if not tensor.is_tensor(ids) then ids = tensor.tensor(ids, { dtype = "i64" }) end
    return tensor.new(C.vr_pipeline_apply_ids(p, images, ids, h, w, o.seed or 0, o.epoch or 0, o.view or 0, tensor.outp))
  end
  return tensor.new(C.vr_pipeline_apply(p, images, h, w, o.seed or 0, o.epoch or 0, o.sample or 0, o.view or 0, tensor.outp))
end

return M
