-- visreg.data_images: folders of JPEG and PNG images as datasets (vr.data.image_folder{...} and
-- vr.data.image_list{...}), the packed cache they are read from, and `visreg data` /
-- `visreg bench data`.
--
-- A source (a class-folder tree or a list file) is scanned (core/data/image_folder.c), hashed from
-- its file list (paths, labels, sizes, mtimes), class names and the stored size, and packed once
-- (core/data/image_pack.c: every core, progress and ETA, resumable) into a cache folder:
--   cache = DIR given:  DIR/<split>            (split: train, val, test, or all for a flat folder)
--   else:               $VISREG_CACHE or ~/.cache/visreg, then images/<source path>-<size>px-<hash>
-- A changed source has another hash, so it is packed anew (the old cache of that path and size is
-- removed); a cache is never mixed with another version of its source.
local ffi = require "ffi"
local core = require "visreg.core"
local util = require "visreg.util"
local C = core.C
local check = core.check

local M = {}

---------------------------------------------------------------- image sets
local sp = ffi.new("vr_image_set *[1]")
local function wrap_set(st)
  if st ~= 0 then sp[0] = nil; util.error("%s", core.last_error()) end
  local s = ffi.gc(sp[0], C.vr_image_set_free)
  sp[0] = nil
  return s
end

function M.folder_set(root, classes_from) return wrap_set(C.vr_image_set_folder(root, classes_from, sp)) end
function M.list_set(root, list, num_classes) return wrap_set(C.vr_image_set_list(root, list, num_classes or 0, sp)) end

function M.set_class_names(set)
  local t = {}
  for c = 0, C.vr_image_set_num_classes(set) - 1 do t[#t + 1] = ffi.string(C.vr_image_set_class_name(set, c)) end
  return t
end

local hexbuf = ffi.new("char[17]")
function M.set_hash(set, size)
  check(C.vr_image_set_hash(set, size, hexbuf))
  return ffi.string(hexbuf)
end

function M.cache_root()
  local env = os.getenv("VISREG_CACHE")
  if env and env ~= "" then return env end
  return (os.getenv("HOME") or "/tmp") .. "/.cache/visreg"
end

-- the default cache folder of a set: named by its absolute root, the size and the hash
function M.default_cache_dir(set, size)
  local root = ffi.string(C.vr_image_set_root(set))
  local name = root:gsub("[^%w%.%-]", "_"):gsub("^_+", "")
  if #name > 100 then name = name:sub(-100) end
  if name == "" then name = "root" end
  return string.format("%s/images/%s-%dpx-%s", M.cache_root(), name, size, M.set_hash(set, size)), name
end

-- removes the caches of older versions of the same source and size (same name, another hash)
local function remove_stale(dir, name, size)
  local parent = dir:match("^(.*)/[^/]*$")
  local p = io.popen("ls -1 " .. util.shell_quote(parent) .. " 2>/dev/null")
  if not p then return end
  local prefix = name .. "-" .. size .. "px-"
  for entry in p:lines() do
    local full = parent .. "/" .. entry
    if entry:sub(1, #prefix) == prefix and #entry == #prefix + 16 and full ~= dir
      and util.file_exists(full .. "/index.txt") then
      os.execute("rm -rf " .. util.shell_quote(full))
    end
  end
  p:close()
end

-- packs set into dir when dir holds no finished cache of it; returns dir
function M.ensure_packed(set, size, dir, o)
  o = o or {}
  local name
  if not dir then dir, name = M.default_cache_dir(set, size) end
  if C.vr_image_cache_valid(set, size, dir) == 0 then
    if name then remove_stale(dir, name, size) end
    check(C.vr_image_pack(set, size, dir, o.workers or 0, o.strict and 1 or 0, o.per_shard or 0, o.quiet and 0 or 1))
  end
  return dir
end

---------------------------------------------------------------- the cache's index
-- reads DIR/index.txt: {hash, size, images, ok, skipped, grey, root, num_classes, classes = {names},
-- counts = {decoded images per class}}
function M.read_index(dir)
  local f = io.open(dir .. "/index.txt", "rb")
  if not f then return nil, string.format("%s holds no finished cache (no index.txt)", dir) end
  local idx = { classes = {}, counts = {}, dir = dir }
  local first = f:read("*l")
  if first ~= "visreg-image-cache 1" then f:close(); return nil, dir .. "/index.txt: not a visreg image cache" end
  for line in f:lines() do
    local k, v = line:match("^(%w+) (.*)$")
    if line:sub(1, 6) == "class\t" then
      idx.classes[#idx.classes + 1] = line:sub(7)
      idx.counts[#idx.classes] = 0
    elseif line:sub(1, 6) == "image\t" then
      local l, s = line:match("^image\t(%d+)\t(%d+)\t")
      if l and s ~= "2" then idx.counts[tonumber(l) + 1] = (idx.counts[tonumber(l) + 1] or 0) + 1 end
    elseif k == "classes" then
      idx.num_classes = tonumber(v)
    elseif k then
      idx[k] = tonumber(v) or v
    end
  end
  f:close()
  return idx
end

---------------------------------------------------------------- specs
local function data() return require "visreg.data" end

local function is_dir(p) return p and util.is_dir(p) end
local function join(root, p)
  if not p or p:sub(1, 1) == "/" then return p end
  return root .. "/" .. p
end

-- the sets of a spec: { {name = split, set = set}, ... } for train and test (test may be nil)
local function sets_of(s)
  local what = "vr.data." .. s.kind
  if not s.root or s.root == "" then
    util.error("%s: root is required (the images' folder; on the command line: --set data.root=DIR)", what)
  end
  if not is_dir(s.root) then util.error("%s: root '%s' is not a folder", what, s.root) end
  if type(s.size) ~= "number" or s.size < 8 or s.size > 4096 or s.size % 1 ~= 0 then
    util.error("%s: size: expected an integer 8..4096 (the stored side in pixels), got %s", what, tostring(s.size))
  end
  if s.kind == "image_folder" then
    local tr, te
    if is_dir(s.root .. "/train") then
      tr = { name = "train", set = M.folder_set(s.root .. "/train") }
      local tdir = is_dir(s.root .. "/val") and "val" or is_dir(s.root .. "/test") and "test"
      if tdir then te = { name = tdir, set = M.folder_set(s.root .. "/" .. tdir, tr.set) } end
    else
      tr = { name = "all", set = M.folder_set(s.root) }
    end
    if s.test_root then
      if te then util.error("%s: test_root is set, but root '%s' has its own %s/ split", what, s.root, te.name) end
      te = { name = "test", set = M.folder_set(s.test_root, tr.set) }
    end
    return tr, te
  end
  -- image_list
  if not s.train then util.error("%s: train is required (a list file of 'relative/path label' lines)", what) end
  local tr = { name = "train", set = M.list_set(s.root, join(s.root, s.train), s.num_classes) }
  local names = s.class_names
  if type(names) == "string" then
    local text = util.read_file(join(s.root, names))
    if not text then util.error("%s: class_names: cannot read '%s'", what, join(s.root, names)) end
    names = {}
    for l in text:gmatch("[^\r\n]+") do names[#names + 1] = l end
  end
  if names then
    local arr = ffi.new("const char *[?]", #names + 1)
    for k, n in ipairs(names) do arr[k - 1] = n end
    check(C.vr_image_set_rename_classes(tr.set, #names, arr))
  end
  local te
  if s.test then
    te = { name = "test", set = M.list_set(s.root, join(s.root, s.test), C.vr_image_set_num_classes(tr.set)) }
    if names then
      local arr = ffi.new("const char *[?]", #names + 1)
      for k, n in ipairs(names) do arr[k - 1] = n end
      check(C.vr_image_set_rename_classes(te.set, #names, arr))
    end
  end
  return tr, te
end

local loaded = setmetatable({}, { __mode = "v" }) -- cache folder -> Dataset, while alive

local function load(s, part)
  local dir = s.cache and (s.cache .. "/" .. part.name) or nil
  dir = M.ensure_packed(part.set, s.size, dir, { workers = s.workers, strict = s.strict, quiet = s.quiet })
  local hash = M.set_hash(part.set, s.size)
  local key = table.concat({ dir, hash, tostring(s.channels), tostring(s.strict) }, "|")
  local d = loaded[key]
  if not d then
    local dp = ffi.new("vr_dataset *[1]")
    local st = C.vr_image_cache_load(dir, hash, s.channels, s.strict and 1 or 0, dp)
    d = data().wrap(st, dp)
    d.classes = M.set_class_names(part.set)
    d.cache = dir
    d.source = ffi.string(C.vr_image_set_root(part.set))
    local idx = M.read_index(dir)
    d.skipped = idx and idx.skipped or 0
    loaded[key] = d
  end
  return d
end

-- one split of an image_folder / image_list spec (before the subset options, which data.lua applies)
function M.open_split(s, train)
  local tr, te = sets_of(s)
  local full = load(s, train and tr or te or tr)
  if te then return full end
  -- no test split of its own: a stratified held-out part of the training folder
  local f = s.holdout
  if not f or f <= 0 then return full end
  if f >= 1 then util.error("vr.data.%s: holdout: expected a fraction in [0, 1), got %s", s.kind, tostring(f)) end
  local p = ffi.new("vr_dataset *[1]")
  local d = data().wrap(C.vr_dataset_holdout(full.handle, f, train and 0 or 1, p), p)
  d.classes, d.cache, d.source, d.skipped = full.classes, full.cache, full.source, full.skipped
  if d:count() == 0 then
    util.error("vr.data.%s: holdout %g of '%s' leaves no %s images (its classes are too small): raise holdout, "
      .. "give test_root, or set holdout = 0 to evaluate on the training images", s.kind, f, s.root,
      train and "training" or "test")
  end
  return d
end

---------------------------------------------------------------- class statistics
-- counts per class (a list, class c at c + 1), the names, and the imbalance ratio largest / smallest
function M.class_counts(d)
  local n = d:num_classes()
  if n <= 0 then return {} end
  local buf = ffi.new("int64_t[?]", n)
  check(C.vr_dataset_class_counts(d.handle, n, buf))
  local t = {}
  for c = 0, n - 1 do t[c + 1] = tonumber(buf[c]) end
  return t
end

function M.imbalance(counts)
  local lo, hi = math.huge, 0
  for _, k in ipairs(counts) do
    if k < lo then lo = k end
    if k > hi then hi = k end
  end
  if hi == 0 then return 0 end
  return lo > 0 and hi / lo or math.huge
end

-- the lines printed when an image dataset loads
function M.summary(d, split, max_names)
  max_names = max_names or 12
  local counts, names = d:class_counts(), d:class_names()
  local parts = {}
  for c = 1, math.min(#counts, max_names) do parts[#parts + 1] = string.format("%s %d", names[c] or tostring(c - 1), counts[c]) end
  if #counts > max_names then parts[#parts + 1] = string.format("... (%d more)", #counts - max_names) end
  local lo, hi = math.huge, 0
  for _, k in ipairs(counts) do lo = math.min(lo, k); hi = math.max(hi, k) end
  local r = M.imbalance(counts)
  local lines = {
    string.format("%s: %d images, %d x %d x %d, %d classes%s", split, d:count(), d:channels(), d:height(), d:width(),
      #counts, d.skipped and d.skipped > 0 and string.format(" (%d bad files skipped when packed: %s/skipped.txt)", d.skipped, d.cache) or ""),
    string.format("  per class: %s", table.concat(parts, ", ")),
    string.format("  smallest %d, largest %d, imbalance ratio %s", lo == math.huge and 0 or lo, hi,
      r == math.huge and "inf (an empty class)" or string.format("%.2f", r)),
  }
  return table.concat(lines, "\n")
end

---------------------------------------------------------------- `visreg data`
local USAGE = [[usage: visreg data pack SRC [--size 64] [--out CACHE] [--workers N] [--strict] [--shard N]
       visreg data pack ROOT --list train.txt [--test-list test.txt] [--size 64] [--out CACHE] ...
       visreg data info CACHE
  pack: decodes every JPEG and PNG of SRC once (class folders; train/ and val/ or test/ when present)
        into CACHE/<split> (default: the cache a recipe finds by itself, under $VISREG_CACHE or
        ~/.cache/visreg); resumes after Ctrl-C; a bad file is skipped with one line (--strict: refused)
  info: the classes, counts and skipped files of a packed cache]]

local function print_index(idx)
  print(string.format("%s: %d images packed at %d px (%d decoded, %d skipped, %d grey), hash %s, source %s",
    idx.dir, idx.images, idx.size, idx.ok, idx.skipped, idx.grey, idx.hash, idx.root))
  local r = M.imbalance(idx.counts)
  print(string.format("%d classes, imbalance ratio %s", #idx.classes, r == math.huge and "inf" or string.format("%.2f", r)))
  for c, n in ipairs(idx.classes) do print(string.format("  %4d  %-30s %d", c - 1, n, idx.counts[c] or 0)) end
  if idx.skipped > 0 then print(string.format("skipped files: %s/skipped.txt", idx.dir)) end
end

function M.main(args)
  local cli = require "visreg.cli"
  local pos, o = cli.parse(args, { size = "value", out = "value", workers = "value", strict = "flag", shard = "value",
    list = "value", ["test-list"] = "value", quiet = "flag" })
  if not pos then io.stderr:write("visreg data: ", o, "\n", USAGE, "\n"); return 2 end
  if o.help then print(USAGE); return 0 end
  local cmd = pos[1]
  if cmd == "info" and #pos == 2 then
    return cli.run_protected(function()
      local idx, err = M.read_index(pos[2])
      if not idx then util.error("%s", err) end
      print_index(idx)
      return 0
    end)
  end
  if cmd ~= "pack" or #pos ~= 2 then io.stderr:write(USAGE, "\n"); return 2 end
  return cli.run_protected(M.pack_command(pos, o))
end

-- the body of `visreg data pack`: errors carry no Lua position (util.boundaries)
function M.pack_command(pos, o)
  local function run()
    local size = tonumber(o.size or 64)
    local s = { root = pos[2], size = size, kind = o.list and "image_list" or "image_folder", train = o.list,
      test = o["test-list"], num_classes = 0, test_root = false }
    local tr, te = sets_of(s)
    for _, part in ipairs { tr, te } do
      if part then
        local dir = o.out and (o.out .. "/" .. part.name) or nil
        dir = M.ensure_packed(part.set, size, dir, { workers = tonumber(o.workers), strict = o.strict,
          per_shard = tonumber(o.shard), quiet = o.quiet })
        local idx = assert(M.read_index(dir))
        print(string.format("%s: %d images (%d skipped) in %d classes -> %s", part.name, idx.ok, idx.skipped,
          #idx.classes, dir))
      end
    end
    return 0
  end
  util.boundaries[run] = true
  return run
end

---------------------------------------------------------------- `visreg bench data`
local BENCH_USAGE = [[usage: visreg bench data DIR [--size 64] [--n 2000] [--batch 256] [--batches 20] [--workers N] [--json]
                        [--make N]   (first writes N synthetic 500 x 375 JPEGs into DIR, when DIR is new)
  decode + resize images/s on one core and on every core, then the loader's images/s (2 augmented
  views a sample) reading the packed cache, beside the same loader on an in-memory dataset of the
  same shape (what the built-in datasets give)]]

function M.bench(args)
  local cli = require "visreg.cli"
  local pos, o = cli.parse(args, { size = "value", n = "value", batch = "value", batches = "value", workers = "value",
    json = "flag" })
  if not pos then io.stderr:write("visreg bench data: ", o, "\n", BENCH_USAGE, "\n"); return 2 end
  if o.help or #pos ~= 1 then print(BENCH_USAGE); return o.help and 0 or 2 end
  return cli.run_protected(function()
    local vr = require "visreg"
    local aug = vr.augment
    local size, n = tonumber(o.size or 64), tonumber(o.n or 2000)
    local cores = C.vr_cpu_count()
    local workers = tonumber(o.workers or cores)
    local s = { root = pos[1], size = size, kind = "image_folder", test_root = false }
    local tr = sets_of(s)
    local set = tr.set
    local count = tonumber(C.vr_image_set_count(set))
    local secs, ok, bad = ffi.new("double[1]"), ffi.new("int64_t[1]"), ffi.new("int64_t[1]")
    local res = { images = math.min(n, count), size = size, cores = cores }
    local one = math.min(n, count, 500)
    check(C.vr_image_decode_bench(set, size, 1, one, secs, ok, bad))
    res.decode_1core = tonumber(ok[0] + bad[0]) / secs[0]
    check(C.vr_image_decode_bench(set, size, cores, math.min(n, count), secs, ok, bad))
    res.decode_all = tonumber(ok[0] + bad[0]) / secs[0]
    -- pack (into the default cache) and load
    local t0 = C.vr_host_now()
    local dir = M.ensure_packed(set, size, nil, { quiet = true })
    res.pack_s = C.vr_host_now() - t0
    t0 = C.vr_host_now()
    local dp = ffi.new("vr_dataset *[1]")
    local ds = data().wrap(C.vr_image_cache_load(dir, nil, 3, 0, dp), dp)
    res.load_s = C.vr_host_now() - t0
    res.cache = dir
    local pipeline = { aug.random_resized_crop { scale = { 0.2, 1 } }, aug.hflip { p = 0.5 },
      aug.jitter { brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1, p = 0.8 }, aug.grayscale { p = 0.2 },
      aug.normalize { mean = { 0.485, 0.456, 0.406 }, std = { 0.229, 0.224, 0.225 } } }
    local batch, nb = tonumber(o.batch or 256), tonumber(o.batches or 20)
    local function loader_rate(d)
      local l = data().loader(d, { batch = math.min(batch, d:count()), workers = workers, prefetch = 4, seed = 1 })
      l:add_view(size, pipeline); l:add_view(size, pipeline)
      local function take()
        local b = l:next()
        if not b then b = l:next() end -- the next epoch
        local n = b:size()
        b:free()
        return n
      end
      for _ = 1, 5 do take() end -- warm-up: the threads start and the 4 prefetched batches are drained
      local t, imgs = C.vr_host_now(), 0
      for _ = 1, nb do imgs = imgs + take() end
      local r = imgs / (C.vr_host_now() - t)
      l:close()
      return r
    end
    res.loader_cache = loader_rate(ds)
    local ref = data().from_tensors(ds:images(), ds:labels(), ds:num_classes())
    res.loader_memory = loader_rate(ref)
    if o.json then print(util.json_encode(res)); return 0 end
    print(string.format("visreg bench data %s: %d images at %d px, %d cores", pos[1], res.images, size, cores))
    print(string.format("  decode+resize, 1 core     %9.0f images/s", res.decode_1core))
    print(string.format("  decode+resize, %2d cores   %9.0f images/s (%.0f per core)", cores, res.decode_all, res.decode_all / cores))
    print(string.format("  pack (all %d files)      %9.2f s%s", count, res.pack_s, res.pack_s < 0.5 and " (already packed)" or ""))
    print(string.format("  load the cache            %9.3f s", res.load_s))
    print(string.format("  loader from the cache     %9.0f images/s (2 views, %d workers)", res.loader_cache, workers))
    print(string.format("  loader, in-memory tensors %9.0f images/s (the built-in datasets' path)", res.loader_memory))
    return 0
  end)
end

return M
