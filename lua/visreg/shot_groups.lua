-- visreg.shot_groups: accuracy on many-, medium- and few-shot classes, as long-tail papers report
-- it (ImageNet-LT: more than 100, 20 to 100, fewer than 20 training images). With few classes a
-- fixed threshold leaves groups empty, so here the classes are ranked by their training count:
-- the top third are many-shot, the bottom third few-shot, the rest medium (10 classes: 3, 4, 3).
-- Ties in the count keep the lower class index first. Each group's accuracy is the mean of its
-- classes' accuracies on the (balanced) test set.
local M = {}

-- group name ("many", "medium" or "few") of each class (1-based list) from its training count
function M.groups(train_counts)
  local C = #train_counts
  local order = {}
  for c = 1, C do order[c] = c end
  table.sort(order, function(a, b)
    if train_counts[a] ~= train_counts[b] then return train_counts[a] > train_counts[b] end
    return a < b
  end)
  local third = C >= 2 and math.max(1, math.floor(C / 3)) or 0 -- 2 classes: one many, one few
  local g = {}
  for rank, c in ipairs(order) do
    g[c] = rank <= third and "many" or (rank > C - third and "few" or "medium")
  end
  return g
end

-- per-class accuracy (1-based; NaN for a class without test rows) from lists of 0-based classes
function M.per_class(pred, labels, C)
  local right, count = {}, {}
  for c = 1, C do right[c], count[c] = 0, 0 end
  for i = 1, #labels do
    local t = labels[i] + 1
    if t >= 1 and t <= C then
      count[t] = count[t] + 1
      if pred[i] == labels[i] then right[t] = right[t] + 1 end
    end
  end
  local acc = {}
  for c = 1, C do acc[c] = count[c] > 0 and right[c] / count[c] or 0 / 0 end
  return acc
end

-- { many =, medium =, few = } mean accuracy of each group's classes (classes without test rows
-- are left out; NaN for an empty group) and per_class
function M.accuracy(pred, labels, train_counts)
  local C = #train_counts
  local acc = M.per_class(pred, labels, C)
  local g = M.groups(train_counts)
  local sum, n = { many = 0, medium = 0, few = 0 }, { many = 0, medium = 0, few = 0 }
  for c = 1, C do
    if acc[c] == acc[c] then sum[g[c]], n[g[c]] = sum[g[c]] + acc[c], n[g[c]] + 1 end
  end
  local out = { per_class = acc }
  for k in pairs(sum) do out[k] = n[k] > 0 and sum[k] / n[k] or 0 / 0 end
  return out
end

-- adds linear_probe_many, _medium and _few to an evaluation's results from the probe's predictions
-- (i64 tensor), the test labels (i64 tensor) and the training dataset's class counts
function M.add_to(res, pred, test_labels, train_ds, C)
  local counts = {}
  for c = 1, C do counts[c] = train_ds:class_count(c - 1) end
  local a = M.accuracy(pred:to_list(), test_labels:to_list(), counts)
  res.linear_probe_many, res.linear_probe_medium, res.linear_probe_few = a.many, a.medium, a.few
  return res
end

return M
