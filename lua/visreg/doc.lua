-- visreg.doc: the one registry of documentation, read by the REPL's help() and ?NAME.
--
--   doc.add(object, "name(args)", "text" [, {group = "probe"}])
--       documents a function, module table, class or any value (kept by identity, weakly). object may
--       also be a path string, "vr.nn.mlp" (from the toolkit's root table) or "tensor:size" (a tensor
--       method), resolved when its module is loaded: the docs of modules that are not loaded yet cost
--       nothing. group sorts the entry in help()'s listing (default: the path's module, else "words").
--   doc.get(object)      the entry {name =, sig =, text =, group =, path =} or nil
--   doc.lookup(path)     the entry of a path ("vr.zeros", "tensor:size"), loaded or not
--   doc.words()          every entry, sorted by group then name
--   doc.groups()         the group names, sorted, and a map group -> sorted entries
--
-- A module documents its own words where they are defined, e.g.
--   local doc = require "visreg.doc"
--   function M.rankme(z) ... end
--   doc.add(M.rankme, "rankme(E | z)", "RankMe (Garrido et al. 2023): exp entropy of ...", { group = "probe" })
-- The toolkit's main functions and modules are seeded below, from their modules' own comments.
local M = {}

local by_object = setmetatable({}, { __mode = "k" })
local by_path = {}   -- path -> entry
local entries = {}   -- every entry, in order of addition
local unresolved = {} -- path entries whose object was not reachable yet

local function name_of(sig)
  return sig:match("^([%w_%.:]+)") or sig
end

local function group_of(path)
  if not path then return nil end
  if path:match("^tensor:") then return "tensor methods" end
  local mod = path:match("^(.*)%.[%w_]+$")
  return mod or path
end

-- the object at a path, through raw lookups only (nothing is loaded by looking)
local function resolve(path)
  local meth = path:match("^tensor:([%w_]+)$")
  if meth then
    local t = package.loaded["visreg.tensor"]
    return t and rawget(t.methods, meth)
  end
  local rest = path:match("^vr%.?(.*)$")
  if not rest then return nil end
  local obj = package.loaded["visreg"]
  if type(obj) ~= "table" then return nil end
  for part in rest:gmatch("[^%.]+") do
    if type(obj) ~= "table" then return nil end
    obj = rawget(obj, part)
    if obj == nil then return nil end
  end
  return obj
end

local function settle()
  if #unresolved == 0 then return end
  local keep = {}
  for _, e in ipairs(unresolved) do
    local obj = resolve(e.path)
    if obj ~= nil and (type(obj) == "table" or type(obj) == "function" or type(obj) == "userdata"
        or type(obj) == "cdata") then
      if not by_object[obj] then by_object[obj] = e end
    else
      keep[#keep + 1] = e
    end
  end
  unresolved = keep
end

function M.add(object, sig, text, o)
  if object == nil then error("doc.add: expected an object or a path, got nil", 2) end
  if type(sig) ~= "string" then error("doc.add: expected a signature string, got " .. type(sig), 2) end
  local path = type(object) == "string" and object or nil
  local e = { name = name_of(sig), sig = sig, text = text or "", path = path,
    group = o and o.group or group_of(path) or "words" }
  entries[#entries + 1] = e
  if path then
    by_path[path] = e
    unresolved[#unresolved + 1] = e
  else
    by_object[object] = e
  end
  return object
end

function M.get(object)
  if object == nil then return nil end
  local e = by_object[object]
  if e then return e end
  settle()
  return by_object[object]
end

function M.lookup(path) return by_path[path] end

local function before(a, b)
  if a.group ~= b.group then return a.group < b.group end
  return a.name < b.name
end

function M.words()
  local out = {}
  for i, e in ipairs(entries) do out[i] = e end
  table.sort(out, before)
  return out
end

function M.groups()
  local names, map = {}, {}
  for _, e in ipairs(M.words()) do
    if not map[e.group] then
      map[e.group] = {}
      names[#names + 1] = e.group
    end
    table.insert(map[e.group], e)
  end
  table.sort(names)
  return names, map
end

---------------------------------------------------------------- the toolkit's own words
local function seed(list)
  for _, d in ipairs(list) do
    -- the modules themselves: group "modules" (help() lists them with vr)
    local module = d[1] == "vr" or (d[1]:match("^vr%.[%w_]+$") and d[2] == d[1])
    M.add(d[1], d[2], d[3], module and { group = "modules" } or nil)
  end
end

seed {
  -- the root and its modules
  { "vr", "vr", "The toolkit: tensors and their constructors, and the submodules vr.nn, vr.loss, vr.optim,\n" ..
    "vr.schedule, vr.data, vr.augment, vr.trainer, vr.probe, vr.checkpoint, vr.metrics, vr.yaml, vr.util,\n" ..
    "vr.functional, vr.recipes (loaded on first use)." },
  { "vr.nn", "vr.nn",
    "Neural-network modules, PyTorch-shaped: Linear, Conv2d, BatchNorm1d/2d, LayerNorm, ReLU, GELU,\n" ..
    "MaxPool2d, AdaptiveAvgPool2d, Flatten, Dropout, Sequential; the model builders mlp, smallcnn,\n" ..
    "resnet18, vit; nn.Module (parameters, train/eval, state_dict, to) and nn.init." },
  { "vr.loss", "vr.loss",
    "The SSL objectives. A spec (vr.loss.visreg{...}, sigreg, swd, vicreg, vicreg_pooled, barlow) is\n" ..
    "recipe data; build(spec) gives an object whose forward(z, ctx) returns the loss and its terms.\n" ..
    "z is V x B x D (views, batch, dims); L = lambda * L_reg + (1 - lambda) * L_inv. The regularizers as\n" ..
    "functions: visreg_reg, sigreg_reg, swd_reg, vicreg_reg, barlow_reg, invariance, cross_entropy." },
  { "vr.optim", "vr.optim",
    "SGD (momentum, Nesterov), AdamW and LARS with parameter groups, no_decay rules and gradient-norm\n" ..
    "clipping, as in PyTorch. A spec (vr.optim.adamw{...}) is recipe data; build(spec, named_params)\n" ..
    "gives the optimizer, which reads lr and weight_decay at every step so that schedules apply." },
  { "vr.schedule", "vr.schedule",
    "Values that change over training: in a recipe, schedule = { lr = vr.schedule.warmup_cosine{...},\n" ..
    "[\"loss.lambda\"] = fn }. Specs (constant, warmup_cosine, step, linear) give a factor of the recipe's\n" ..
    "value; a function fn(epoch, step, ctx) gives the value itself." },
  { "vr.data", "vr.data",
    "Datasets and the multi-view loader: specs fashion_mnist, cifar10, cifar100, idx, image_folder,\n" ..
    "image_list (recipe data);\n" ..
    "open(spec) gives {train =, test =} Dataset objects; from_tensors(images, labels); loader(ds, opts)." },
  { "vr.augment", "vr.augment",
    "Augmentation specs (random_resized_crop, resize, hflip, jitter, grayscale, blur, solarize, erase,\n" ..
    "noise, normalize) and their C pipelines: build(list), apply(list, images, opts). Views are a pure\n" ..
    "function of (seed, epoch, sample, view)." },
  { "vr.trainer", "vr.trainer",
    "The training loop: setup(recipe, opts) builds data, models and optimizers; restore(t, path);\n" ..
    "fit(t); evaluate(t) runs the linear probe and kNN; train(recipe, opts) does it all." },
  { "vr.probe", "vr.probe",
    "Evaluation of frozen encoders: features(enc, ds, opts), linear_probe and knn (core/probe.c).\n" ..
    "Ctrl-C stops them." },
  { "vr.checkpoint", "vr.checkpoint",
    "Safetensors checkpoints: save(path, tensors, meta), load(path) -> tensors, meta." },
  { "vr.metrics", "vr.metrics", "Health of embeddings: embedding_std(z) and effective_rank(z) (RankMe)." },
  { "vr.yaml", "vr.yaml", "YAML files as Lua values: load(path), parse(text), null, keys(map), where(t, key)." },
  { "vr.util", "vr.util",
    "Helpers: errors at the caller's line, deepcopy, sorted_keys, nearest (edit distance), JSON\n" ..
    "(json_encode, json_decode), files (read_file, write_file, is_dir)." },
  { "vr.functional", "vr.functional",
    "The neural-network ops with PyTorch-like options (linear, conv2d, batch_norm, pooling, dropout,\n" ..
    "activations), over the C front-ends; nn modules call these." },
  { "vr.recipes", "vr.recipes",
    "Recipes are data: vr.recipe{...} checks a table and fills its defaults; load(path, overrides)\n" ..
    "runs a recipe file and applies --set overrides." },

  -- tensors
  { "vr.empty", "vr.empty(shape [, opts])",
    "An uninitialised tensor. shape: {2, 3} or 2, 3; opts: {dtype = \"f32\", device = \"cpu\",\n" ..
    "requires_grad = false} (dtypes f32 f64 i32 i64 u8 bf16; devices cpu cuda auto)." },
  { "vr.zeros", "vr.zeros(shape [, opts])",
    "A tensor of zeros. shape: {2, 3} or 2, 3; opts: {dtype = \"f32\", device = \"cpu\",\n" ..
    "requires_grad = false}. vr.zeros{2, 3}, vr.zeros(4, 5, {dtype = \"f64\"})" },
  { "vr.ones", "vr.ones(shape [, opts])", "A tensor of ones; shape and opts as vr.zeros." },
  { "vr.full", "vr.full(shape, value [, opts])", "A tensor filled with value; opts as vr.zeros." },
  { "vr.arange", "vr.arange(stop) | vr.arange(start, stop [, step] [, opts])",
    "Values from start (0) up to stop (exclusive) by step (1), f32 unless opts.dtype." },
  { "vr.scalar", "vr.scalar(value [, opts])", "A 0-dim tensor." },
  { "vr.tensor", "vr.tensor(data [, opts])",
    "A tensor from nested Lua tables ({{1, 2}, {3, 4}}) or a flat list with opts.shape; a tensor is\n" ..
    "cloned." },
  { "vr.load_npy", "vr.load_npy(path)", "A tensor from a NumPy .npy file (t:save_npy(path) writes one)." },
  { "vr.cat", "vr.cat(list, dim)", "Concatenates tensors along an existing dim (also vr.concat)." },
  { "vr.stack", "vr.stack(list, dim)", "Stacks tensors of one shape along a new dim." },
  { "vr.where", "vr.where(cond, a, b)", "Elementwise a where cond is non-zero, else b." },
  { "vr.no_grad", "vr.no_grad(fn, ...)",
    "Runs fn(...) with gradient recording off (restored even when fn raises); returns its results." },
  { "vr.enable_grad", "vr.enable_grad(fn, ...)", "Runs fn(...) with gradient recording on." },
  { "vr.grad_enabled", "vr.grad_enabled()", "true when ops record the autograd graph." },
  { "vr.set_grad_enabled", "vr.set_grad_enabled(on)",
    "Turns gradient recording on or off; returns the previous mode." },
  { "vr.is_tensor", "vr.is_tensor(x)", "true when x is a tensor." },
  { "vr.autocast", "vr.autocast(dtype, fn, ...)",
    "Runs fn with mixed precision (\"bf16\", or \"f32\" for off): matmul, linear and conv2d take f32\n" ..
    "inputs in bf16." },
  { "vr.Generator", "vr.Generator(seed [, stream])",
    "A Philox generator (identical on every device); pass it as opts.generator." },
  { "vr.manual_seed", "vr.manual_seed(seed [, stream])",
    "Seeds the default generator (parameter initialisation and random tensors)." },
  { "vr.rand", "vr.rand(shape [, opts])", "Uniform [0, 1) values; opts: dtype, device, generator." },
  { "vr.randn", "vr.randn(shape [, opts])", "Standard normal values; opts: dtype, device, generator." },
  { "vr.randint", "vr.randint(low, high, shape [, opts])", "Integers in [low, high), i64 unless opts.dtype." },
  { "vr.randperm", "vr.randperm(n [, opts])", "A random permutation of 0..n-1 (i64)." },
  { "vr.num_threads", "vr.num_threads()", "The CPU threads the kernels use (vr.set_num_threads(n) changes it)." },
  { "vr.cuda_available", "vr.cuda_available()", "true when the CUDA backend is built in and sees a GPU." },
  { "vr.device", "vr.device(d)", "The device name for cpu, cuda or auto (cuda when available)." },
  { "vr.profile", "vr.profile(fn, ...)",
    "Runs fn with the op profiler on and prints where the device and host time went." },
  { "vr.recipe", "vr.recipe{...}", "Checks a recipe table and fills its defaults (see vr.recipes)." },
  { "vr.check_interrupt", "vr.check_interrupt()",
    "Raises \"interrupted\" when Ctrl-C was pressed since (taking the request): long Lua loops call it\n" ..
    "between units of work so that the REPL's Ctrl-C stops them." },

  -- tensor methods
  { "tensor:size", "x:size([dim])", "The size of dim (from 0; negative from the end), or the shape as a table." },
  { "tensor:shape", "x:shape()", "The shape as a Lua array, {B, D}." },
  { "tensor:dim", "x:dim()", "The number of dims." },
  { "tensor:numel", "x:numel()", "The number of elements." },
  { "tensor:dtype", "x:dtype()", "The element type: f32 f64 i32 i64 u8 bf16." },
  { "tensor:device", "x:device()", "cpu or cuda." },
  { "tensor:item", "x:item()", "The value of a one-element tensor as a Lua number." },
  { "tensor:get", "x:get(i, j, ...)", "The element at 0-based indices." },
  { "tensor:set", "x:set(i, j, ..., value)", "Writes one element." },
  { "tensor:to_table", "x:to_table()", "The elements as nested Lua tables." },
  { "tensor:to_list", "x:to_list()", "The elements as a flat Lua array." },
  { "tensor:to", "x:to(dtype | device | {dtype =, device =})",
    "A copy in another dtype or on another device (x itself when nothing changes)." },
  { "tensor:clone", "x:clone()", "A copy with its own storage." },
  { "tensor:view", "x:view(shape)", "A view with another shape (contiguous tensors)." },
  { "tensor:reshape", "x:reshape(shape)", "Another shape: a view when possible, else a copy." },
  { "tensor:permute", "x:permute(d0, d1, ...)", "A view with the dims reordered." },
  { "tensor:transpose", "x:transpose(d0, d1)", "A view with two dims swapped (x:t() for 2-D)." },
  { "tensor:narrow", "x:narrow(dim, start, length)", "A view of length entries of dim from start." },
  { "tensor:select", "x:select(dim, index)", "A view at index along dim (the dim goes)." },
  { "tensor:at", "x:at(...)",
    "Indexing like x[...] in PyTorch: a number selects, {start, stop[, step]} slices, {} keeps a dim.\n" ..
    "x:at({}, {1, 3}) is x[:, 1:3]; x(...) for short." },
  { "tensor:sum", "x:sum([dims [, keepdim]])", "The sum over dims (all when nil)." },
  { "tensor:mean", "x:mean([dims [, keepdim]])", "The mean over dims (all when nil)." },
  { "tensor:std", "x:std([dims [, correction [, keepdim]]])", "The standard deviation (correction 1: unbiased)." },
  { "tensor:var", "x:var([dims [, correction [, keepdim]]])", "The variance (correction 1: unbiased)." },
  { "tensor:norm", "x:norm([p [, dims [, keepdim]]])", "The p-norm (2)." },
  { "tensor:max", "x:max([dim [, keepdim]])", "The maximum; with dim, the values and their indices." },
  { "tensor:argmax", "x:argmax([dim [, keepdim]])", "The indices of the maxima." },
  { "tensor:matmul", "x:matmul(y)", "Matrix product (batched when 3-D)." },
  { "tensor:softmax", "x:softmax([dim])", "Softmax along dim (-1)." },
  { "tensor:backward", "x:backward([grad [, retain_graph]])",
    "Backpropagates from x (a scalar unless grad is given); gradients accumulate in leaves' grad()." },
  { "tensor:grad", "x:grad()", "The accumulated gradient, or nil." },
  { "tensor:detach", "x:detach()", "The same values without autograd history." },
  { "tensor:requires_grad_", "x:requires_grad_([on])", "Makes x a leaf that records gradients." },
  { "tensor:print", "x:print()", "Prints x (large tensors summarised)." },
  { "tensor:save_npy", "x:save_npy(path)", "Writes x as a NumPy .npy file." },

  -- nn
  { "vr.nn.mlp", "nn.mlp{d0, d1, ..., dn, norm = \"batch\", act = \"relu\", bias = true, last_norm = false}",
    "Linear layers with norm and activation between them (not after the last unless last_norm); out_dim = dn." },
  { "vr.nn.smallcnn", "nn.smallcnn{in_channels = 1, width = 32, pool = 1}",
    "(conv3x3-BN-ReLU) x 4, max-pooling after the first two, average pooling to pool x pool;\n" ..
    "4 * width * pool^2 features. Sized for 28x28 images on a CPU." },
  { "vr.nn.resnet18", "nn.resnet18{in_channels = 3, stem = \"cifar\" | \"imagenet\", width = 64}",
    "ResNet-18 without its classifier; 8 * width features. The CIFAR stem is one 3x3 conv\n" ..
    "(stride 1) and no max-pooling." },
  { "vr.nn.vit", "nn.vit{image_size = 28, patch = 7, in_channels = 3, width = 192, depth = 6, heads = 3, ...}",
    "Vision transformer: patch embedding, learned positions, pre-norm transformer blocks; pool = \"cls\" | " ..
    "\"mean\"." },
  { "vr.nn.Linear", "nn.Linear(in_features, out_features [, {bias = true, dtype =, device =}])",
    "y = x W^T + b, initialised as PyTorch does." },
  { "vr.nn.Conv2d",
    "nn.Conv2d(in_channels, out_channels, kernel_size [, {stride = 1, padding = 0, dilation = 1, groups = 1, bias = true}])",
    "2-D convolution on [N, C, H, W]." },
  { "vr.nn.Sequential", "nn.Sequential(m1, m2, ...)", "Modules applied in order; :add(m), :len(), :get(i)." },
  { "vr.nn.Module", "nn.Module",
    "The base of every module: parameters(), named_parameters(), num_parameters(), train(), eval(),\n" ..
    "state_dict(), load_state_dict(sd), to(device | dtype), zero_grad(), apply(fn). Calling a module runs forward." },

  -- losses
  { "vr.loss.visreg", "loss.visreg{lambda = 0.6, slices = 1024, weights = {scale = 1, shape = 1, center = 1}}",
    "VISReg: the sliced regularizer (scale, shape and center terms over random 1-D projections) mixed\n" ..
    "with the invariance term: lambda * L_reg + (1 - lambda) * L_inv." },
  { "vr.loss.sigreg", "loss.sigreg{lambda = 0.02, slices = 1024, knots = 17, t_max = 3}",
    "SIGReg (LeJEPA's sketched isotropic Gaussian regularizer)." },
  { "vr.loss.swd", "loss.swd{lambda = 0.6, slices = 1024}", "Sliced Wasserstein distance to a Gaussian." },
  { "vr.loss.vicreg", "loss.vicreg{lambda = 1, inv = 25, var = 25, cov = 1}",
    "The official two-view VICReg (its own invariance term)." },
  { "vr.loss.barlow", "loss.barlow{lambda = 1, offdiag = 0.0051}", "Barlow Twins." },
  { "vr.loss.cross_entropy", "loss.cross_entropy(logits, target [, label_smoothing])",
    "Mean cross-entropy of B x C logits against i64 labels." },

  -- optimizers and schedules
  { "vr.optim.sgd", "optim.sgd{lr = 0.1, momentum = 0.9, nesterov = false, weight_decay = 0, ...}",
    "SGD with momentum; no_decay, groups and clip_grad_norm as every optimizer." },
  { "vr.optim.adamw",
    "optim.adamw{lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0.05, no_decay = {\"bias\", \"norm\"}}",
    "AdamW (one fused update over every parameter)." },
  { "vr.optim.lars", "optim.lars{lr = 0.3, momentum = 0.9, weight_decay = 1e-6, eta = 0.02, ...}",
    "LARS as in solo-learn." },
  { "vr.schedule.warmup_cosine", "schedule.warmup_cosine{warmup_epochs = 0, final_ratio = 0, start_ratio = 0}",
    "Linear warmup from start_ratio to 1, then cosine decay to final_ratio at the last step (a factor)." },
  { "vr.schedule.step", "schedule.step{milestones = {}, gamma = 0.1}",
    "Multiplied by gamma at each milestone epoch." },
  { "vr.schedule.linear", "schedule.linear{from = 1, to = 0, epochs = false}",
    "From `from` to `to` (factors) linearly over training." },
  { "vr.schedule.constant", "schedule.constant{value = false}", "Factor 1 (or value itself when given)." },

  -- data and augmentations
  { "vr.data.fashion_mnist",
    "data.fashion_mnist{root = false, subset = 0, test_subset = 0, long_tail = 0, classes = false}",
    "Fashion-MNIST (root false: /usr/share/datasets/fashion-mnist); subset n keeps the first n training images." },
  { "vr.data.cifar10", "data.cifar10{root =, subset = 0, ...}", "CIFAR-10 (binary version)." },
  { "vr.data.image_folder",
    "data.image_folder{root =, size = 64, test_root = false, holdout = 0.1, channels = 3, strict = false, cache = false, ...}",
    "A folder of JPEG/PNG class folders (or train/ and val/), decoded once into a packed cache; bad files skipped." },
  { "vr.data.image_list", "data.image_list{root =, train = \"train.txt\", test = \"test.txt\", size = 64, ...}",
    "\"relative/path label\" list files under root (ImageNet-LT style), packed like image_folder." },
  { "vr.data.open", "data.open(spec)", "{train = Dataset, test = Dataset} for a dataset spec." },
  { "vr.data.loader", "data.loader(ds, {batch = 256, shuffle = true, drop_last = true, seed = 0, workers = 2})",
    "Shuffled multi-view batches on worker threads." },
  { "vr.augment.random_resized_crop", "augment.random_resized_crop{scale = {0.08, 1}, ratio = {3/4, 4/3}, p = 1}",
    "Random crop resized to the view's size." },
  { "vr.augment.hflip", "augment.hflip{p = 0.5}", "Horizontal flip." },
  { "vr.augment.jitter", "augment.jitter{brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1, p = 0.8}",
    "Colour jitter as torchvision." },
  { "vr.augment.normalize", "augment.normalize{mean = 0, std = 1}",
    "(x - mean) / std; numbers or one value per channel." },
  { "vr.augment.apply",
    "augment.apply(list_or_pipeline, images [, {size =, seed =, epoch =, sample =, view =, ids =}])",
    "Runs a pipeline on C x H x W or N x C x H x W images (u8 or f32, CPU or CUDA); f32 result." },

  -- probes, checkpoints, metrics, trainer
  { "vr.probe.features", "probe.features(enc, ds [, {pipeline =, size =, batch = 1000, device = \"cpu\"}])",
    "f32 N x D features of a dataset through a frozen encoder (eval mode, no gradients). Ctrl-C stops it." },
  { "vr.probe.linear_probe",
    "probe.linear_probe(train_x, train_y, test_x, test_y [, {l2 = {0, 1e-4, 1e-3}, max_iter =, num_classes =, predictions =}])",
    "Test accuracy in [0, 1] of an L-BFGS logistic regression on the features, the best over the l2 values; with predictions = true also the best probe's class of each test row (i64)." },
  { "vr.probe.knn", "probe.knn(train_x, train_y, test_x, test_y [, {k = 20, T = 0.07, num_classes =}])",
    "Weighted kNN accuracy (cosine similarity, votes exp(sim / T))." },
  { "vr.checkpoint.save", "checkpoint.save(path, tensors, meta)",
    "Writes name -> tensor pairs and metadata as a safetensors file, atomically." },
  { "vr.checkpoint.load", "checkpoint.load(path)",
    "tensors (name -> CPU tensor) and meta (key -> string) of a safetensors file." },
  { "vr.metrics.embedding_std", "metrics.embedding_std(z)",
    "The mean over dims of the std over the batch of z (B x D)." },
  { "vr.metrics.effective_rank", "metrics.effective_rank(z [, max_dim = 512])",
    "RankMe: exp of the entropy of the normalised singular values of z (B x D)." },
  { "vr.trainer.setup", "trainer.setup(recipe [, {device =, quiet =}])",
    "The trainer table (data, models, optimizers) for a recipe." },
  { "vr.trainer.evaluate", "trainer.evaluate(t)",
    "Linear probe and kNN of t's encoder on the train and test splits: {linear_probe =, knn =}." },
  { "vr.trainer.train", "trainer.train(recipe [, {out =, resume =, force =, device =, quiet =}])",
    "Trains a recipe, saves checkpoints and evaluates; returns the summary. A fresh run into a folder that\n" ..
    "holds one is refused unless force (the old files move to replaced-DATE/)." },
}

return M
