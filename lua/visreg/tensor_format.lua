-- visreg.tensor_format: a tensor as text, as PyTorch prints it (tensor.format, tostring(t),
-- t:print()): values in one width, a fixed or exponent format chosen from their range, and the
-- edges of each dim only (3 a side) past 1000 elements; dtype, device, shape and grad_fn after.
local F = {}

local function fmt_values(buf, n, dtype)
  local isint = dtype == "i32" or dtype == "i64" or dtype == "u8"
  if isint then return function(v) return string.format("%d", v) end end
  local maxa, mina, allint = 0, math.huge, true
  for i = 0, n - 1 do
    local v = buf[i]
    if v == v and v ~= math.huge and v ~= -math.huge then
      local a = math.abs(v)
      if a > maxa then maxa = a end
      if a > 0 and a < mina then mina = a end
      if v % 1 ~= 0 then allint = false end
    end
  end
  local f
  if allint and maxa < 1e8 then f = "%.0f."
  elseif maxa >= 1e8 or (mina < 1e-4) or (mina < math.huge and maxa / mina > 1e3) then f = "%.4e"
  else f = "%.4f" end
  return function(v)
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    return string.format(f, v)
  end
end

local EDGE, THRESHOLD = 3, 1000
function F.format(t, name)
  local tensor = require "visreg.tensor" -- loaded: this runs on a tensor
  name = name or "tensor"
  local shape = t:shape()
  local numel = t:numel()
  local summarise = numel > THRESHOLD
  -- summarising: keep only the edges of each dim before copying to the host
  local src = t
  if summarise then
    for d = 0, #shape - 1 do
      if shape[d + 1] > 2 * EDGE then
        src = tensor.cat({ src:slice(d, 0, EDGE), src:slice(d, shape[d + 1] - EDGE) }, d)
      end
    end
  end
  local buf, n = tensor.host_doubles(src:detach())
  local f = fmt_values(buf, n, t:dtype())
  local strs, width = {}, 0
  for i = 0, n - 1 do
    local s = f(buf[i])
    strs[i] = s
    if #s > width then width = #s end
  end
  local sshape = src:shape()
  local pos = 0
  local indent0 = #name + 1
  local function build(d, indent)
    if d > #sshape then
      local s = strs[pos]; pos = pos + 1
      return string.rep(" ", width - #s) .. s
    end
    local parts = {}
    local size, full = sshape[d], shape[d]
    for i = 1, size do
      if summarise and full > 2 * EDGE and i == EDGE + 1 then parts[#parts + 1] = "..." end
      parts[#parts + 1] = build(d + 1, indent + 1)
    end
    if d == #sshape then return "[" .. table.concat(parts, ", ") .. "]" end
    local sep = "," .. string.rep("\n", #sshape - d) .. string.rep(" ", indent + 1)
    return "[" .. table.concat(parts, sep) .. "]"
  end
  local body = #sshape == 0 and strs[0] or build(1, indent0)
  local extras = {}
  if t:dtype() ~= "f32" then extras[#extras + 1] = "dtype=" .. t:dtype() end
  if t:device() ~= "cpu" then extras[#extras + 1] = "device=" .. t:device() end
  if summarise then extras[#extras + 1] = "shape=[" .. table.concat(shape, ", ") .. "]" end
  local g = t:grad_fn()
  if g ~= "" then extras[#extras + 1] = "grad_fn=" .. g
  elseif t:requires_grad() then extras[#extras + 1] = "requires_grad=true" end
  local extra = #extras > 0 and (", " .. table.concat(extras, ", ")) or ""
  return name .. "(" .. body .. extra .. ")"
end

return F
