-- visreg.data: datasets and the multi-view loader (C, core/data/) bound through FFI.
-- Dataset specs are recipe data (vr.data.fashion_mnist{...}); open(spec) gives the train and
-- test Dataset objects; Loader makes shuffled multi-view batches on worker threads.
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local C = core.C
local check = core.check
local new, outp = tensor.new, tensor.outp

local M = {}

local function spec(kind, t, defaults, rules) return util.spec("vr.data." .. kind, kind, t, defaults, rules) end
local common = function(extra)
  local d = { root = false, subset = 0, test_subset = 0, long_tail = 0, classes = false, reduce = false }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end
-- the values every dataset spec accepts (checked when the spec is made and again after --set)
local COUNT0 = { int = true, min = 0 }
local RULES = { subset = COUNT0, test_subset = COUNT0,
  long_tail = { desc = "0 (off) or an imbalance ratio >= 1",
    test = function(v) return v == 0 or (type(v) == "number" and v >= 1 and v < math.huge) end },
  classes = { list = true, int = true, min = 0, optional = true },
  reduce = { desc = "false or a table { per_class =, long_tail =, low_rank =, seed = } (visreg.data_reduce)",
    test = function(v) return v == false or type(v) == "table" end } }
local function rules(extra)
  local r = {}
  for k, v in pairs(RULES) do r[k] = v end
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- root false: /usr/share/datasets/fashion-mnist. subset n: the first n training images (0: all);
-- test_subset likewise for the test split; long_tail r: class c keeps n_max * r^(-c/(C-1)) images;
-- classes: a list of classes to keep (relabelled 0..k-1); reduce: per-class, long-tailed and
-- low-rank training sets (visreg.data_reduce)
function M.fashion_mnist(t) return spec("fashion_mnist", t, common(), rules()) end
function M.cifar10(t) return spec("cifar10", t, common(), rules()) end
function M.cifar100(t) return spec("cifar100", t, common { coarse = false }, rules()) end
-- IDX files: images/labels for training, test_images/test_labels for evaluation
function M.idx(t)
  return spec("idx", t, common { images = false, labels = false, test_images = false, test_labels = false, num_classes = 0 },
    rules { num_classes = COUNT0 })
end

-- A folder of JPEG/PNG images (see visreg.data_images and README "Your own images"): root/CLASS/...
-- (sorted class names give the labels), or root/train/CLASS/... with root/val/ or root/test/. size:
-- the stored side (short side resized with area averaging, centre crop); decoded once into a
-- packed cache (cache false: under $VISREG_CACHE or ~/.cache/visreg). Without a val/test split,
-- test_root gives the test images, else holdout (a stratified fraction of each class) is held out
-- (0: the test split is the training set). channels 3, 1 (luma) or 0 (1 when every file is grey);
-- strict: refuse bad files instead of skipping them; workers: packing threads (0: every core); quiet:
-- no class summary when the dataset loads
local image_common = { size = 64, channels = 3, strict = false, cache = false, workers = 0, holdout = 0.1, quiet = false }
function M.image_folder(t)
  local d = common { test_root = false }
  for k, v in pairs(image_common) do d[k] = v end
  return spec("image_folder", t, d)
end
-- "relative/path label" list files (ImageNet-LT style) under root; train/test relative to root;
-- num_classes 0: the largest training label + 1; class_names: a list, or a file of one name a line
function M.image_list(t)
  local d = common { train = "train.txt", test = "test.txt", num_classes = 0, class_names = false }
  for k, v in pairs(image_common) do d[k] = v end
  return spec("image_list", t, d)
end

---------------------------------------------------------------- Dataset
local Dataset = {}
Dataset.__index = Dataset
M.Dataset = Dataset

local dp = ffi.new("vr_dataset *[1]")
local function wrap_ds(st, p)
  p = p or dp
  if st ~= 0 then p[0] = nil; util.error("%s", core.last_error()) end
  local d = ffi.gc(p[0], C.vr_dataset_free)
  p[0] = nil
  return setmetatable({ handle = d }, Dataset)
end
M.wrap = wrap_ds
-- a derived dataset keeps its parent's class names (map: new label -> old label, when relabelled)
local function derive(parent, d, map)
  if parent.classes then
    if map then
      d.classes = {}
      for k, old in ipairs(map) do d.classes[k] = parent.classes[old + 1] end
    else
      d.classes = parent.classes
    end
  end
  d.cache, d.source, d.skipped = parent.cache, parent.source, parent.skipped
  return d
end

function M.from_tensors(images, labels, num_classes)
  return wrap_ds(C.vr_dataset_from_tensors(images, labels, num_classes or 0, dp))
end

function Dataset:count() return tonumber(C.vr_dataset_count(self.handle)) end
Dataset.__len = Dataset.count
function Dataset:channels() return tonumber(C.vr_dataset_channels(self.handle)) end
function Dataset:height() return tonumber(C.vr_dataset_height(self.handle)) end
function Dataset:width() return tonumber(C.vr_dataset_width(self.handle)) end
function Dataset:num_classes() return C.vr_dataset_num_classes(self.handle) end
function Dataset:has_labels() return C.vr_dataset_has_labels(self.handle) ~= 0 end
function Dataset:label(i) return tonumber(C.vr_dataset_label(self.handle, i)) end
function Dataset:images() return new(C.vr_dataset_images(self.handle, outp)) end       -- u8 N x C x H x W
function Dataset:images_f32() return new(C.vr_dataset_images_f32(self.handle, outp)) end
function Dataset:labels() return new(C.vr_dataset_labels(self.handle, outp)) end       -- i64 N
function Dataset:head(n) return derive(self, wrap_ds(C.vr_dataset_head(self.handle, n, dp))) end
function Dataset:subset(indices)
  local n, a = tensor.int64s(indices, "indices")
  return derive(self, wrap_ds(C.vr_dataset_subset(self.handle, n, a, dp)))
end
function Dataset:class_subset(classes, relabel)
  local a = ffi.new("int[?]", #classes, classes)
  return derive(self, wrap_ds(C.vr_dataset_class_subset(self.handle, #classes, a, relabel == false and 0 or 1, dp)),
    relabel ~= false and classes or nil)
end
function Dataset:long_tail(r) return derive(self, wrap_ds(C.vr_dataset_long_tail(self.handle, r, dp))) end
function Dataset:unlabeled() return wrap_ds(C.vr_dataset_unlabeled(self.handle, dp)) end
function Dataset:class_count(c) return tonumber(C.vr_dataset_class_count(self.handle, c)) end
-- the class names (self.classes for image folders, else "0", "1", ...), images per class (class c
-- at c + 1) and the imbalance ratio (largest / smallest class)
function Dataset:class_names()
  if self.classes then return self.classes end
  local t = {}
  for c = 0, self:num_classes() - 1 do t[c + 1] = tostring(c) end
  return t
end
function Dataset:class_counts() return require("visreg.data_images").class_counts(self) end
function Dataset:imbalance() return require("visreg.data_images").imbalance(self:class_counts()) end
function Dataset:__tostring()
  return string.format("Dataset(%d images, %dx%dx%d, %d classes)", self:count(), self:channels(), self:height(),
    self:width(), self:num_classes())
end

local function root_of(s) return s.root or nil end

local openers = {
  fashion_mnist = function(s, train) return C.vr_dataset_fashion_mnist(root_of(s), train and 1 or 0, dp) end,
  cifar10 = function(s, train) return C.vr_dataset_cifar10(root_of(s), train and 1 or 0, dp) end,
  cifar100 = function(s, train) return C.vr_dataset_cifar100(root_of(s), train and 1 or 0, s.coarse and 1 or 0, dp) end,
  image_folder = function(s, train) return require("visreg.data_images").open_split(s, train) end,
  image_list = function(s, train) return require("visreg.data_images").open_split(s, train) end,
  idx = function(s, train)
    local im = train and s.images or s.test_images
    local lb = train and s.labels or s.test_labels
    if not im then util.error("vr.data.idx: %s is required", train and "images" or "test_images") end
    return C.vr_dataset_idx(im, lb or nil, s.num_classes or 0, dp)
  end,
}

-- one split of a dataset spec, with its subset, classes and long-tail options applied
function M.open_split(s, train)
  local open = type(s) == "table" and openers[s.kind]
  if not open then
    util.error("data: expected vr.data.fashion_mnist/cifar10/cifar100/idx/image_folder/image_list{...}, got %s", type(s))
  end
  local d = open(s, train)
  if type(d) ~= "table" then d = wrap_ds(d) end
  if s.classes and #s.classes > 0 then d = d:class_subset(s.classes, true) end
  if train and s.long_tail and s.long_tail > 1 then d = d:long_tail(s.long_tail) end
  local n = train and s.subset or s.test_subset
  if n and n > 0 and n < d:count() then d = d:head(n) end
  -- image folders: the classes, counts per class and the imbalance ratio as the dataset loads
  if d.cache and not s.quiet then
    print(require("visreg.data_images").summary(d, string.format("%s %s (%s)", s.kind, train and "train" or "test", d.source)))
  end
  return d
end

function M.open(s)
  local train, test = M.open_split(s, true), M.open_split(s, false)
  if s.reduce then train, test = require("visreg.data_reduce").apply(s.reduce, train, test) end
  return { train = train, test = test }
end

---------------------------------------------------------------- Loader
local Loader = {}
Loader.__index = Loader
M.Loader = Loader

local lp = ffi.new("vr_loader *[1]")
local bp = ffi.new("vr_batch *[1]")

-- Loader(dataset, {batch=256, shuffle=true, drop_last=true, seed=0, workers=2, prefetch=2, raw=false});
-- raw: batches hold the samples' u8 images (Batch:images) instead of views, for views made elsewhere
-- (augment.apply with ids = Batch:indices(), epoch = Batch:epoch(): the same views, e.g. on the GPU)
function M.loader(ds, o)
  o = o or {}
  check(C.vr_loader_new(ds.handle, o.batch or 256, o.shuffle == false and 0 or 1, o.drop_last == false and 0 or 1,
    o.seed or 0, o.workers or 2, o.prefetch or 2, lp))
  local l = ffi.gc(lp[0], C.vr_loader_free)
  lp[0] = nil
  if o.raw then check(C.vr_loader_set_raw(l, 1)) end
  -- the loader keeps a pointer to the dataset: hold it as long as the loader lives
  return setmetatable({ handle = l, dataset = ds, pipelines = {} }, Loader)
end
setmetatable(Loader, { __call = function(_, ds, o) return M.loader(ds, o) end })

-- add_view(size, pipeline): size a number or {h, w}; pipeline a list of vr.augment specs
function Loader:add_view(size, pipeline)
  local h, w = 0, 0
  if type(size) == "number" then h, w = size, size elseif type(size) == "table" then h, w = size[1], size[2] end
  local p = require("visreg.augment").build(pipeline or {})
  check(C.vr_loader_add_view(self.handle, h, w, p))
  return self
end
-- set_shard(rank, size): this rank's part of every global batch (data-parallel training)
function Loader:set_shard(rank, size)
  check(C.vr_loader_set_shard(self.handle, rank, size))
  return self
end
function Loader:num_views() return C.vr_loader_num_views(self.handle) end
function Loader:raw() return C.vr_loader_raw(self.handle) ~= 0 end
function Loader:num_batches() return tonumber(C.vr_loader_num_batches(self.handle)) end
function Loader:epoch() return tonumber(C.vr_loader_epoch(self.handle)) end
function Loader:batch_index() return tonumber(C.vr_loader_batch_index(self.handle)) end
function Loader:set_position(epoch, index)
  check(C.vr_loader_set_position(self.handle, epoch, index))
  return self
end
-- the next Batch, or nil at the end of the epoch
function Loader:next()
  check(C.vr_loader_next(self.handle, bp))
  local b = bp[0]
  bp[0] = nil
  if b == nil then return nil end
  return setmetatable({ handle = ffi.gc(b, C.vr_batch_free) }, M.Batch)
end
-- frees the worker threads now rather than at garbage collection
function Loader:close()
  if self.handle ~= nil then
    C.vr_loader_free(ffi.gc(self.handle, nil))
    self.handle = nil
  end
end

local Batch = {}
Batch.__index = Batch
M.Batch = Batch
function Batch:num_views() return C.vr_batch_num_views(self.handle) end
function Batch:size() return tonumber(C.vr_batch_size(self.handle)) end
function Batch:epoch() return tonumber(C.vr_batch_epoch(self.handle)) end
function Batch:index() return tonumber(C.vr_batch_index(self.handle)) end
function Batch:view(v) return new(C.vr_batch_view(self.handle, v, outp)) end
-- views first..first+n-1 as n x B x C x H x W
function Batch:views(first, n) return new(C.vr_batch_views(self.handle, first or 0, n or self:num_views(), outp)) end
function Batch:labels() return new(C.vr_batch_labels(self.handle, outp)) end
function Batch:indices() return new(C.vr_batch_indices(self.handle, outp)) end
function Batch:images() return new(C.vr_batch_images(self.handle, outp)) end -- raw loaders: u8 B x C x H x W
function Batch:free()
  if self.handle ~= nil then C.vr_batch_free(ffi.gc(self.handle, nil)); self.handle = nil end
end

return M
