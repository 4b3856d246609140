-- visreg.nn.module: classes and the Module base (parameters, buffers, children, train/eval,
-- state_dict/load_state_dict, device moves), as in PyTorch.
local tensor = require "visreg.tensor"
local util = require "visreg.util"

local M = {}

-- class(name, parent): a table of methods; calling it makes an instance via __init(...).
-- Instances are callable (forward) and print as a module tree.
function M.class(name, parent)
  local cls = {}
  cls.__index = cls
  cls.__name = name
  cls.__parent = parent
  cls.__call = function(self, ...) return self:forward(...) end
  cls.__tostring = function(self) return self:repr() end
  setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local o = setmetatable({}, c)
      o:__init(...)
      return o
    end,
    __tostring = function() return "class " .. name end,
  })
  return cls
end

-- isinstance(obj, cls)
function M.isinstance(o, cls)
  local c = getmetatable(o)
  while c do
    if c == cls then return true end
    c = c.__parent
  end
  return false
end

local Module = M.class("Module")
M.Module = Module

function Module:__init()
  self._param_names = {}
  self._buffer_names = {}
  self._module_names = {}
  self.training = true
end

-- makes t a leaf that requires grad and registers it under name (t may be nil: no parameter)
function Module:register_parameter(name, t)
  if rawget(self, "_param_names") == nil then
    error(self.__name .. ": call the parent's __init before registering parameters", 2)
  end
  if t ~= nil then
    if not tensor.is_tensor(t) then util.error("%s.%s: expected a tensor, got %s", self.__name, name, type(t)) end
    if not t:is_leaf() then t = t:detach() end
    if not t:requires_grad() then t:requires_grad_(true) end
  end
  local found = false
  for _, n in ipairs(self._param_names) do if n == name then found = true end end
  if not found then self._param_names[#self._param_names + 1] = name end
  self[name] = t
  return t
end

function Module:register_buffer(name, t)
  local found = false
  for _, n in ipairs(self._buffer_names) do if n == name then found = true end end
  if not found then self._buffer_names[#self._buffer_names + 1] = name end
  self[name] = t
  return t
end

function Module:add_module(name, m)
  name = tostring(name)
  local found = false
  for _, n in ipairs(self._module_names) do if n == name then found = true end end
  if not found then self._module_names[#self._module_names + 1] = name end
  self[name] = m
  return m
end

-- children in registration order: list of {name, module}
function Module:named_children()
  local out = {}
  for _, n in ipairs(self._module_names) do
    if self[n] then out[#out + 1] = { n, self[n] } end
  end
  return out
end
function Module:children()
  local out = {}
  for _, c in ipairs(self:named_children()) do out[#out + 1] = c[2] end
  return out
end

-- every module below (self included) as {name, module}, depth first
function Module:named_modules(prefix, out)
  out = out or {}
  prefix = prefix or ""
  out[#out + 1] = { prefix, self }
  for _, c in ipairs(self:named_children()) do
    c[2]:named_modules(prefix == "" and c[1] or prefix .. "." .. c[1], out)
  end
  return out
end

-- list of {name, tensor, module}
function Module:named_parameters()
  local out = {}
  for _, m in ipairs(self:named_modules()) do
    local prefix, mod = m[1], m[2]
    for _, n in ipairs(mod._param_names) do
      local p = mod[n]
      if p ~= nil then out[#out + 1] = { prefix == "" and n or prefix .. "." .. n, p, mod } end
    end
  end
  return out
end
function Module:parameters()
  local out = {}
  for _, e in ipairs(self:named_parameters()) do out[#out + 1] = e[2] end
  return out
end
function Module:named_buffers()
  local out = {}
  for _, m in ipairs(self:named_modules()) do
    local prefix, mod = m[1], m[2]
    for _, n in ipairs(mod._buffer_names) do
      local b = mod[n]
      if b ~= nil then out[#out + 1] = { prefix == "" and n or prefix .. "." .. n, b, mod } end
    end
  end
  return out
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:named_modules()) do m[2].training = mode end
  return self
end
function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p:zero_grad() end
end

-- name -> tensor for every parameter and buffer (the tensors themselves, not copies)
function Module:state_dict()
  local sd = {}
  for _, e in ipairs(self:named_parameters()) do sd[e[1]] = e[2] end
  for _, e in ipairs(self:named_buffers()) do sd[e[1]] = e[2] end
  return sd
end

-- copies values in place; strict (default) refuses missing and unexpected names. Each tensor must
-- have the dtype and shape of the module's own (nothing is converted). prefix: put before the
-- names in messages (the checkpoint's names, "encoder.")
function Module:load_state_dict(sd, strict, prefix)
  if strict == nil then strict = true end
  prefix = prefix or ""
  local own = {}
  for _, e in ipairs(self:named_parameters()) do own[#own + 1] = e end
  for _, e in ipairs(self:named_buffers()) do own[#own + 1] = e end
  local seen = {}
  tensor.no_grad(function()
    for _, e in ipairs(own) do
      local name, t = e[1], e[2]
      local src = sd[name]
      if src == nil then
        if strict then util.error("load_state_dict: missing key '%s%s'", prefix, name) end
      else
        seen[name] = true
        if not tensor.is_tensor(src) then util.error("load_state_dict: '%s%s': expected a tensor, got %s", prefix, name, type(src)) end
        local a, b = t:shape_str(), src:shape_str()
        if a ~= b then util.error("load_state_dict: '%s%s': expected shape %s, got %s", prefix, name, a, b) end
        if t:dtype() ~= src:dtype() then
          util.error("load_state_dict: '%s%s': expected dtype %s, got %s", prefix, name, t:dtype(), src:dtype())
        end
        t:copy_(src)
      end
    end
  end)
  if strict then
    for name in pairs(sd) do
      if not seen[name] then util.error("load_state_dict: unexpected key '%s%s'", prefix, name) end
    end
  end
  return self
end

-- moves parameters and buffers to a device or dtype (t:to's argument); parameters stay leaves
function Module:to(where)
  for _, m in ipairs(self:named_modules()) do
    local mod = m[2]
    for _, n in ipairs(mod._param_names) do
      local p = mod[n]
      if p ~= nil then
        local q = p:to(where)
        if q ~= p then mod[n] = q:detach():requires_grad_(true) end
      end
    end
    for _, n in ipairs(mod._buffer_names) do
      local b = mod[n]
      -- buffers keep integer dtypes (counters) when the dtype changes
      if b ~= nil and not (type(where) == "string" and where:match("^[fb]") and not b:dtype():match("^[fb]")) then
        mod[n] = b:to(where)
      end
    end
  end
  return self
end
-- to_memory_format("channels_last" | "contiguous"), as PyTorch's model.to(memory_format=...):
-- switches every Conv2d, BatchNorm2d, pooling layer, Flatten and ConvNet below (self included)
-- to channels-last activations ([N, H, W, C]) or back to NCHW. Parameters keep their shapes.
-- A module that is neither layout-aware (_set_memory_format) nor layout_agnostic refuses
-- channels_last with an error naming it, and then nothing is changed.
function Module:to_memory_format(fmt)
  if fmt ~= "channels_last" and fmt ~= "contiguous" then
    util.error("to_memory_format: expected \"contiguous\" or \"channels_last\", got %s", tostring(fmt))
  end
  local cl = fmt == "channels_last"
  local mods = self:named_modules()
  if cl then
    for _, m in ipairs(mods) do
      local mod = m[2]
      if not mod._set_memory_format and not mod.layout_agnostic then
        util.error("to_memory_format: %s%s cannot run in channels_last (it is neither layout-aware nor " ..
          "layout-agnostic); use \"contiguous\" for this model", mod.__name or "a module",
          m[1] == "" and "" or " (" .. m[1] .. ")")
      end
    end
  end
  for _, m in ipairs(mods) do
    if m[2]._set_memory_format then m[2]:_set_memory_format(cl) end
  end
  return self
end

function Module:cuda() return self:to("cuda") end
function Module:cpu() return self:to("cpu") end
function Module:double() return self:to("f64") end
function Module:float() return self:to("f32") end

function Module:forward()
  error(self.__name .. ": forward is not defined", 2)
end

-- one line describing the module's own settings (subclasses override)
function Module:extra_repr() return "" end

function Module:repr(indent)
  indent = indent or ""
  local kids = self:named_children()
  local head = self.__name .. "(" .. self:extra_repr()
  if #kids == 0 then return head .. ")" end
  local lines = { head }
  for _, c in ipairs(kids) do
    lines[#lines + 1] = indent .. "  (" .. c[1] .. "): " .. c[2]:repr(indent .. "  ")
  end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end

-- apply(fn): fn(module) on every module, depth first
function Module:apply(fn)
  for _, m in ipairs(self:named_modules()) do fn(m[2]) end
  return self
end

return M
