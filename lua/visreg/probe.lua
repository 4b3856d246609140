-- visreg.probe: evaluation of frozen encoders: features of a dataset, the offline linear probe
-- (L-BFGS logistic regression, core/probe.c) and the weighted kNN.
local ffi = require "ffi"
local core = require "visreg.core"
local tensor = require "visreg.tensor"
local augment = require "visreg.augment"
local C = core.C
local check = core.check

local M = {}

local accp = ffi.new("double[1]")

-- features(encoder, dataset, {pipeline = vr_pipeline or list, size =, batch = 1000, device = "cpu"})
-- -> f32 N x D on the device, the encoder in eval mode and without gradients; an interrupt request
-- (Ctrl-C) stops it between batches with an "interrupted" error
function M.features(enc, ds, o)
  o = o or {}
  local pipeline = o.pipeline or {}
  if type(pipeline) == "table" then pipeline = augment.build(pipeline) end
  local images = ds:images()
  local n = images:size(0)
  local bs = o.batch or 1000
  local was_training = enc.training
  enc:eval()
  local parts = {}
  local ok, err = pcall(tensor.no_grad, function()
    for i = 0, n - 1, bs do
      core.check_interrupt()
      local m = math.min(bs, n - i)
      local x = augment.apply(pipeline, images:narrow(0, i, m), { size = o.size })
      if o.device and o.device ~= "cpu" then x = x:to(o.device) end
      parts[#parts + 1] = enc(x):detach()
    end
  end)
  enc:train(was_training) -- also after an error or an interrupt
  if not ok then error(err, 0) end
  return tensor.cat(parts, 0)
end

-- accuracy in [0, 1] of a logistic regression fitted on (train_x, train_y), the best over the
-- l2 penalties given (default {0, 1e-4, 1e-3}, as the reference does); o.predictions: also the
-- best probe's predicted class of each test row (an i64 tensor)
local lpredp = ffi.new("vr_tensor *[1]")
function M.linear_probe(train_x, train_y, test_x, test_y, o)
  o = o or {}
  local best, best_pred = 0, nil
  for _, l2 in ipairs(o.l2 or { 0, 1e-4, 1e-3 }) do
    check(C.vr_linear_probe_classify(train_x, train_y, test_x, test_y, o.num_classes or 0, l2, o.max_iter or 0,
      o.predictions and lpredp or nil, accp))
    local pred = o.predictions and tensor.wrap(lpredp[0]) or nil
    if accp[0] > best or (pred and not best_pred) then best, best_pred = math.max(best, accp[0]), pred end
  end
  return best, best_pred
end

-- accuracy in [0, 1] of the weighted kNN (k neighbours, temperature T) on cosine similarity;
-- o.predictions: also the predicted class of each test row (an i64 tensor), at no extra cost
local predp = ffi.new("vr_tensor *[1]")
function M.knn(train_x, train_y, test_x, test_y, o)
  o = o or {}
  if o.predictions then
    check(C.vr_knn_classify(train_x, train_y, test_x, test_y, o.num_classes or 0, o.k or 20, o.T or 0.07, predp, accp))
    return accp[0], tensor.wrap(predp[0])
  end
  check(C.vr_knn_probe(train_x, train_y, test_x, test_y, o.num_classes or 0, o.k or 20, o.T or 0.07, accp))
  return accp[0]
end

-- confusion(pred, labels, num_classes) from two lists or i64 tensors of class indices: the
-- confusion matrix (rows the true class, columns the predicted one, 1-based), each class's accuracy
-- (NaN for a class with no test row), the overall accuracy and each class's row count
function M.confusion(pred, labels, nc)
  if tensor.is_tensor(pred) then pred = pred:to_list() end
  if tensor.is_tensor(labels) then labels = labels:to_list() end
  local confusion, count, right = {}, {}, {}
  for c = 1, nc do
    confusion[c] = {}
    for c2 = 1, nc do confusion[c][c2] = 0 end
    count[c], right[c] = 0, 0
  end
  local all = 0
  for i = 1, #labels do
    local t, q = labels[i] + 1, pred[i] + 1
    confusion[t][q] = confusion[t][q] + 1
    count[t] = count[t] + 1
    if t == q then right[t], all = right[t] + 1, all + 1 end
  end
  local per_class = {}
  for c = 1, nc do per_class[c] = count[c] > 0 and right[c] / count[c] or 0 / 0 end
  return confusion, per_class, #labels > 0 and all / #labels or 0 / 0, count
end

return M
