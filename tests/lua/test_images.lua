-- image folders through the Lua API: vr.data.image_folder / image_list specs (train/val layout,
-- flat folders with a held-out part, list files), class names, counts and the imbalance ratio,
-- the subset / test_subset / long_tail / classes options on them, a changed folder repacked, the
-- loader on the cached dataset, the recipe's --set data.root, and `visreg data pack` / `info`.
-- The PNGs are written here (stored deflate blocks: no encoder needed).
local tap = require "tap"
local vr = require "visreg"
local bit = require "bit"
local data = vr.data
local util = vr.util

local bin = os.getenv("VISREG_BIN") or "bin/visreg"
local tmp = string.format("%s/visreg_images_%d_%d", os.getenv("TMPDIR") or "/tmp", os.time(), math.random(1, 1e9))
util.mkdir_p(tmp)

---------------------------------------------------------------- a PNG writer
local crc_table = {}
for n = 0, 255 do
  local c = n
  for _ = 1, 8 do c = bit.band(c, 1) ~= 0 and bit.bxor(0xEDB88320, bit.rshift(c, 1)) or bit.rshift(c, 1) end
  crc_table[n] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = bit.bxor(crc_table[bit.band(bit.bxor(c, s:byte(i)), 0xFF)], bit.rshift(c, 8)) end
  return bit.bxor(c, 0xFFFFFFFF)
end
local function be32(v) return string.char(bit.band(bit.rshift(v, 24), 255), bit.band(bit.rshift(v, 16), 255),
  bit.band(bit.rshift(v, 8), 255), bit.band(v, 255)) end
local function chunk(kind, body) return be32(#body) .. kind .. body .. be32(crc32(kind .. body)) end

-- w x h RGB, pixel(x, y) -> r, g, b
local function write_png(path, w, h, pixel)
  local rows = {}
  for y = 0, h - 1 do
    local row = { "\0" }
    for x = 0, w - 1 do row[#row + 1] = string.char(pixel(x, y)) end
    rows[#rows + 1] = table.concat(row)
  end
  local raw = table.concat(rows)
  local a, b = 1, 0
  for i = 1, #raw do a = (a + raw:byte(i)) % 65521; b = (b + a) % 65521 end
  local z, pos = { "\120\1" }, 1
  repeat
    local part = raw:sub(pos, pos + 65534)
    pos = pos + #part
    local final = pos > #raw and 1 or 0
    z[#z + 1] = string.char(final, bit.band(#part, 255), bit.rshift(#part, 8), bit.band(bit.bnot(#part), 255),
      bit.band(bit.rshift(bit.bnot(#part), 8), 255)) .. part
  until pos > #raw
  z[#z + 1] = be32(b * 65536 + a)
  local f = assert(io.open(path, "wb"))
  f:write("\137PNG\r\n\26\n", chunk("IHDR", be32(w) .. be32(h) .. "\8\2\0\0\0"), chunk("IDAT", table.concat(z)),
    chunk("IEND", ""))
  f:close()
end

local colours = { cat = { 220, 30, 30 }, dog = { 30, 200, 40 }, eel = { 20, 40, 230 } }
local function fill(dir, counts)
  for name, n in pairs(counts) do
    util.mkdir_p(dir .. "/" .. name)
    local c = colours[name]
    for i = 1, n do
      write_png(string.format("%s/%s/%03d.png", dir, name, i), 20 + i % 3 * 4, 16 + i % 2 * 6,
        function() return c[1], c[2], c[3] end)
    end
  end
end

---------------------------------------------------------------- train/ and val/
local root = tmp .. "/pets"
fill(root .. "/train", { cat = 12, dog = 8, eel = 4 })
fill(root .. "/val", { cat = 3, dog = 3, eel = 3 })
local spec = data.image_folder { root = root, size = 16, cache = tmp .. "/cache", quiet = true }
local ds = data.open(spec)
tap.eq(ds.train:count(), 24, "train/: every image")
tap.eq(ds.test:count(), 9, "val/ is the test split")
tap.eq(table.concat(ds.train:class_names(), ","), "cat,dog,eel", "class names are the sorted folder names")
tap.eq(table.concat(ds.train.classes, ","), "cat,dog,eel", "ds.train.classes holds them too")
tap.eq(table.concat(ds.train:class_counts(), ","), "12,8,4", "counts per class")
tap.near(ds.train:imbalance(), 3, 1e-9, "imbalance ratio: largest / smallest class")
tap.ok(ds.train:channels() == 3 and ds.train:height() == 16 and ds.train:width() == 16, "3 x size x size")
local im = ds.train:images()
local first = im:select(0, 0)
tap.near(first:select(0, 0):float():mean():item(), 220, 1e-6, "the first cat is red (exact: PNG)")
local lab = ds.test:labels()
tap.eq(lab:to_table()[4], 1, "val/dog has dog's label")
tap.ok(util.file_exists(tmp .. "/cache/train/index.txt") and util.file_exists(tmp .. "/cache/val/index.txt"),
  "cache = DIR: DIR/train and DIR/val")

local summary = require("visreg.data_images").summary(ds.train, "train")
tap.ok(summary:find("cat 12, dog 8, eel 4", 1, true) and summary:find("imbalance ratio 3.00", 1, true),
  "the load summary names classes, counts and the ratio", summary)

-- the options compose on image datasets as on the built-in ones
local o = data.open(data.image_folder { root = root, size = 16, cache = tmp .. "/cache", quiet = true,
  classes = { 2, 0 }, long_tail = 4, subset = 5, test_subset = 4 })
tap.eq(table.concat(o.train:class_names(), ","), "eel,cat", "classes: kept and relabelled, names follow")
tap.eq(o.test:count(), 4, "test_subset")
tap.eq(o.train:count(), 5, "subset after classes and long_tail (4 eels + 3 cats, then the first 5)")
local lt = data.open(data.image_folder { root = root, size = 16, cache = tmp .. "/cache", quiet = true, long_tail = 4 })
tap.eq(table.concat(lt.train:class_counts(), ","), "12,6,3", "long_tail: n_max * r^(-c/(C-1))")
tap.eq(table.concat(lt.train:class_names(), ","), "cat,dog,eel", "long_tail keeps the names")

-- the loader reads the cached dataset as any other
local l = data.loader(ds.train, { batch = 8, workers = 2, seed = 3 })
l:add_view(12, { vr.augment.random_resized_crop { scale = { 0.5, 1 } }, vr.augment.hflip { p = 0.5 } })
l:add_view(12, { vr.augment.hflip { p = 0.5 } })
local b = l:next()
tap.ok(b:num_views() == 2 and b:view(0):size(0) == 8 and b:view(0):size(1) == 3 and b:view(0):size(2) == 12,
  "the loader makes augmented views from the cache")
b:free()
l:close()

-- a changed folder is packed anew
write_png(root .. "/train/dog/999.png", 30, 30, function() return 1, 2, 3 end)
local ds2 = data.open(spec)
tap.eq(ds2.train:count(), 25, "an added file: repacked")
tap.eq(ds2.train:class_counts()[2], 9, "the new file counts in its class")
os.remove(root .. "/train/dog/999.png")
tap.eq(data.open(spec).train:count(), 24, "a removed file: repacked")

---------------------------------------------------------------- a flat folder, held-out part
local flat = tmp .. "/flat"
fill(flat, { cat = 20, dog = 10 })
local fs = data.open(data.image_folder { root = flat, size = 16, cache = tmp .. "/fcache", holdout = 0.2, quiet = true })
tap.eq(table.concat(fs.test:class_counts(), ","), "4,2", "holdout: a stratified fraction of each class")
tap.eq(table.concat(fs.train:class_counts(), ","), "16,8", "the rest trains")
tap.ok(util.file_exists(tmp .. "/fcache/all/index.txt"), "a flat folder is packed once, as all/")
local t2 = tmp .. "/flat_test"
fill(t2, { cat = 2, dog = 1 })
local ft = data.open(data.image_folder { root = flat, test_root = t2, size = 16, cache = tmp .. "/fcache2", quiet = true })
tap.ok(ft.train:count() == 30 and ft.test:count() == 3, "test_root gives the test split")

---------------------------------------------------------------- list files
local lists = tmp .. "/lt"
fill(lists .. "/img", { cat = 4, dog = 2 })
local function write(path, s) local f = assert(io.open(path, "wb")); f:write(s); f:close() end
write(lists .. "/train.txt", "img/cat/001.png 0\nimg/cat/002.png 0\nimg/cat/003.png 0\nimg/dog/001.png 1\n")
write(lists .. "/test.txt", "img/cat/004.png 0\nimg/dog/002.png 1\n")
local li = data.open(data.image_list { root = lists, size = 16, cache = tmp .. "/lcache", class_names = { "cat", "dog" },
  quiet = true })
tap.ok(li.train:count() == 4 and li.test:count() == 2, "image_list: train.txt and test.txt")
tap.eq(table.concat(li.train:class_names(), ","), "cat,dog", "class_names")
tap.eq(table.concat(li.train:class_counts(), ","), "3,1", "list labels")
write(lists .. "/bad.txt", "img/cat/001.png 0\n../../etc/passwd 1\n")
tap.raises(function() data.open(data.image_list { root = lists, train = "bad.txt", size = 16, quiet = true }) end,
  { "bad.txt:2", "leaves the root" }, "an escaping path is refused with file:line")
write(lists .. "/bad.txt", "img/cat/001.png 0\nimg/dog/001.png 5\n")
tap.raises(function() data.open(data.image_list { root = lists, train = "bad.txt", num_classes = 2, size = 16, quiet = true }) end,
  { "bad.txt:2", "out of range" }, "a label out of range is refused with file:line")
tap.raises(function() data.open(data.image_folder { size = 16 }) end, { "root is required", "--set data.root=DIR" },
  "a missing root says how to give one")
tap.raises(function() data.open(data.image_folder { root = tmp .. "/nope", size = 16 }) end, { "not a folder" },
  "a missing folder is named")

---------------------------------------------------------------- the recipe
local recipe = require "visreg.recipe"
local r = recipe.load("recipes/imagefolder_visreg.lua", { "data.root=" .. root, "data.size=16" })
tap.eq(r.data.root, root, "the recipe takes --set data.root=DIR")
tap.eq(r.data.kind, "image_folder", "the recipe reads an image folder")

---------------------------------------------------------------- the command
local env = "VISREG_CACHE=" .. util.shell_quote(tmp .. "/home_cache") .. " "
local p = io.popen(env .. util.shell_quote(bin) .. " data pack " .. util.shell_quote(root) .. " --size 16 2>&1; echo rc=$?")
local out = p:read("*a")
p:close()
tap.ok(out:find("rc=0", 1, true) and out:find("train: 24 images", 1, true) and out:find("val: 9 images", 1, true),
  "visreg data pack: both splits", out)
local dir = out:match("train: 24 images %(0 skipped%) in 3 classes %-> (%S+)")
tap.ok(dir and dir:find(tmp .. "/home_cache/images/", 1, true) and dir:find("%-16px%-%x+$"),
  "the default cache: $VISREG_CACHE/images/<path>-<size>px-<hash>", dir)
p = io.popen(util.shell_quote(bin) .. " data info " .. util.shell_quote(dir or "") .. " 2>&1")
out = p:read("*a")
p:close()
tap.ok(out:find("3 classes, imbalance ratio 3.00", 1, true) and out:find("eel", 1, true), "visreg data info", out)

os.execute("rm -rf " .. util.shell_quote(tmp))
os.exit(tap.done(), true)
