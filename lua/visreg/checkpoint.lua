-- visreg.checkpoint: safetensors checkpoints (core/ckpt_write.c, ckpt_read.c). save(path, tensors, meta) writes
-- name -> tensor pairs and string metadata atomically; load(path) reads them back (CPU tensors)
-- after the C reader has validated the whole file. Non-string metadata is stored as JSON.
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local C = core.C
local check = core.check

local M = {}

local wp = ffi.new("vr_ckpt_writer *[1]")
local rp = ffi.new("vr_ckpt_reader *[1]")

function M.save(path, tensors, meta)
  check(C.vr_ckpt_writer_new(wp))
  local w = ffi.gc(wp[0], C.vr_ckpt_writer_free)
  wp[0] = nil
  for _, name in ipairs(util.sorted_keys(tensors)) do
    local t = tensors[name]
    if not tensor.is_tensor(t) then util.error("checkpoint.save: '%s': expected a tensor, got %s", name, type(t)) end
    check(C.vr_ckpt_writer_add(w, name, t:detach()))
  end
  for _, k in ipairs(util.sorted_keys(meta or {})) do
    local v = meta[k]
    if type(v) ~= "string" then v = util.json_encode(v) end
    check(C.vr_ckpt_writer_add_meta(w, k, v))
  end
  check(C.vr_ckpt_writer_save(w, path))
  C.vr_ckpt_writer_free(ffi.gc(w, nil))
end

-- tensors (name -> CPU tensor) and meta (key -> string)
function M.load(path)
  check(C.vr_ckpt_open(path, rp))
  local r = ffi.gc(rp[0], C.vr_ckpt_close)
  rp[0] = nil
  local tensors, meta = {}, {}
  for i = 0, C.vr_ckpt_count(r) - 1 do
    local name = ffi.string(C.vr_ckpt_name(r, i))
    tensors[name] = tensor.new(C.vr_ckpt_load(r, name, tensor.outp))
  end
  for i = 0, C.vr_ckpt_meta_count(r) - 1 do
    local k = ffi.string(C.vr_ckpt_meta_key(r, i))
    meta[k] = ffi.string(C.vr_ckpt_meta(r, k))
  end
  C.vr_ckpt_close(ffi.gc(r, nil))
  return tensors, meta
end

-- the tensors whose names start with prefix, with the prefix removed
function M.with_prefix(tensors, prefix)
  local out = {}
  for name, t in pairs(tensors) do
    if name:sub(1, #prefix) == prefix then out[name:sub(#prefix + 1)] = t end
  end
  return out
end

return M
