-- visreg.nn.models: the builders used by recipes: mlp, smallcnn, resnet18 (with BasicBlock) and
-- vit. Each returns a module with out_dim set (the feature size it produces).
local tensor = require "visreg.tensor"
local util = require "visreg.util"
local I = require "visreg.nn.initializers"
local mod = require "visreg.nn.module"
local L = require "visreg.nn.layers"
local class, Module = mod.class, mod.Module

local M = {}

local function opts(o) return { dtype = o.dtype, device = o.device } end
local function with(o, extra)
  local t = opts(o)
  for k, v in pairs(extra) do t[k] = v end
  return t
end

local function norm_layer(kind, n, o, what)
  if kind == "batch" or kind == "bn" then return L.BatchNorm1d(n, opts(o)) end
  if kind == "layer" or kind == "ln" then return L.LayerNorm(n, opts(o)) end
  if kind == nil or kind == false or kind == "none" then return nil end
  util.error("%s: norm: expected batch, layer or none, got %s", what, tostring(kind))
end
local function act_layer(kind, what)
  if kind == "relu" then return L.ReLU() end
  if kind == "gelu" then return L.GELU() end
  if kind == "tanh" then return L.Tanh() end
  if kind == nil or kind == false or kind == "none" then return nil end
  util.error("%s: act: expected relu, gelu, tanh or none, got %s", what, tostring(kind))
end

-- mlp{d0, d1, ..., dn, norm="batch", act="relu", bias=true, last_norm=false}: Linear layers with
-- norm and activation between them (not after the last unless last_norm)
function M.mlp(o)
  if type(o) ~= "table" or #o < 2 then util.error("nn.mlp: expected a list of at least 2 sizes, e.g. {512, 2048, 128}") end
  util.check_keys("nn.mlp", o, { "norm", "act", "bias", "last_norm", "dtype", "device" })
  for i = 1, #o do
    if type(o[i]) ~= "number" or o[i] < 1 then util.error("nn.mlp: size %d: expected a positive integer, got %s", i, tostring(o[i])) end
  end
  local norm = o.norm == nil and "batch" or o.norm
  local act = o.act == nil and "relu" or o.act
  local seq = L.Sequential()
  for i = 2, #o do
    seq:add(L.Linear(o[i - 1], o[i], with(o, { bias = o.bias })))
    if i < #o or o.last_norm then
      local n = norm_layer(norm, o[i], o, "nn.mlp")
      if n then seq:add(n) end
      if i < #o then
        local a = act_layer(act, "nn.mlp")
        if a then seq:add(a) end
      end
    end
  end
  seq.out_dim = o[#o]
  return seq
end

-- smallcnn{in_channels=1, width=32, pool=1}: (conv3x3-BN-ReLU) x 4, max-pooling after the first
-- two, average pooling to pool x pool; 4*width*pool^2 features. Sized for 28x28 images on a CPU.
-- pool = 2 or 4 keeps a coarse layout of the image, which a linear probe uses well.
function M.smallcnn(o)
  o = o or {}
  util.check_keys("nn.smallcnn", o, { "in_channels", "width", "pool", "dtype", "device" })
  local pool = o.pool or 1
  local w = o.width or 32
  local c = { o.in_channels or 1, w, 2 * w, 4 * w, 4 * w }
  local seq = L.ConvNet()
  for i = 1, 4 do
    seq:add(L.Conv2d(c[i], c[i + 1], 3, with(o, { padding = 1, bias = false })))
    seq:add(L.BatchNorm2d(c[i + 1], opts(o)))
    seq:add(L.ReLU())
    if i <= 2 then seq:add(L.MaxPool2d(2)) end
  end
  seq:add(L.AdaptiveAvgPool2d(pool))
  seq:add(L.Flatten())
  seq.out_dim = 4 * w * pool * pool
  return seq
end

---------------------------------------------------------------- ResNet
local BasicBlock = class("BasicBlock", Module)
M.BasicBlock = BasicBlock
BasicBlock.layout_agnostic = true -- its convolutions and norms switch; the residual add is elementwise
-- BasicBlock(in_planes, planes, stride, opts): two 3x3 conv-BN with a residual connection
function BasicBlock:__init(cin, cout, stride, o)
  Module.__init(self)
  o = o or {}
  stride = stride or 1
  self:add_module("conv1", L.Conv2d(cin, cout, 3, with(o, { stride = stride, padding = 1, bias = false })))
  self:add_module("bn1", L.BatchNorm2d(cout, opts(o)))
  self:add_module("conv2", L.Conv2d(cout, cout, 3, with(o, { padding = 1, bias = false })))
  self:add_module("bn2", L.BatchNorm2d(cout, opts(o)))
  if stride ~= 1 or cin ~= cout then
    self:add_module("shortcut", L.Sequential(L.Conv2d(cin, cout, 1, with(o, { stride = stride, bias = false })),
      L.BatchNorm2d(cout, opts(o))))
  end
end
function BasicBlock:forward(x)
  if L.fusion.bn_act then -- relu(bn1(.)) and relu(bn2(.) + shortcut) as fused batch norms
    local y = self.bn1(self.conv1(x), nil, true)
    local s = self.shortcut and self.shortcut(x) or x
    return self.bn2(self.conv2(y), s, true)
  end
  local y = self.bn1(self.conv1(x)):relu()
  y = self.bn2(self.conv2(y))
  local s = self.shortcut and self.shortcut(x) or x
  return (y + s):relu()
end

-- resnet18{in_channels=3, stem="cifar"|"imagenet", width=64}: the encoder without its classifier;
-- 8*width features. The CIFAR stem is one 3x3 conv (stride 1) and no max-pooling. A ConvNet:
-- model:to_memory_format("channels_last") runs it on [N, H, W, C] activations (cuDNN's fast
-- layout) from the same [N, C, H, W] images, with the same parameters and features.
function M.resnet18(o)
  o = o or {}
  util.check_keys("nn.resnet18", o, { "in_channels", "stem", "width", "dtype", "device" })
  local w = o.width or 64
  local stem = o.stem or "imagenet"
  local seq = L.ConvNet()
  if stem == "cifar" then
    seq:add(L.Conv2d(o.in_channels or 3, w, 3, with(o, { padding = 1, bias = false })))
    seq:add(L.BatchNorm2d(w, opts(o)))
    seq:add(L.ReLU())
  elseif stem == "imagenet" then
    seq:add(L.Conv2d(o.in_channels or 3, w, 7, with(o, { stride = 2, padding = 3, bias = false })))
    seq:add(L.BatchNorm2d(w, opts(o)))
    seq:add(L.ReLU())
    seq:add(L.MaxPool2d(3, { stride = 2, padding = 1 }))
  else
    util.error("nn.resnet18: stem: expected cifar or imagenet, got %s", tostring(stem))
  end
  local cin = w
  for k, cout in ipairs { w, 2 * w, 4 * w, 8 * w } do
    seq:add(BasicBlock(cin, cout, k == 1 and 1 or 2, o))
    seq:add(BasicBlock(cout, cout, 1, o))
    cin = cout
  end
  seq:add(L.AdaptiveAvgPool2d(1))
  seq:add(L.Flatten())
  seq.out_dim = 8 * w
  return seq
end

---------------------------------------------------------------- ViT
local Attention = class("Attention", Module)
M.Attention = Attention
function Attention:__init(width, heads, o)
  Module.__init(self)
  if width % heads ~= 0 then util.error("nn.vit: width %d is not divisible by heads %d", width, heads) end
  self.heads, self.width = heads, width
  self.scale = 1 / math.sqrt(width / heads)
  self:add_module("qkv", L.Linear(width, 3 * width, opts(o)))
  self:add_module("proj", L.Linear(width, width, opts(o)))
end
function Attention:forward(x) -- B x N x W
  local B, N, W = x:size(0), x:size(1), x:size(2)
  local H = self.heads
  local qkv = self.qkv(x:reshape(B * N, W)):reshape(B, N, 3, H, W / H):permute(2, 0, 3, 1, 4)
  local q, k, v = qkv:select(0, 0), qkv:select(0, 1), qkv:select(0, 2)
  local attn = (q:matmul(k:transpose(-2, -1)) * self.scale):softmax(-1)
  local y = attn:matmul(v):permute(0, 2, 1, 3):reshape(B * N, W)
  return self.proj(y):reshape(B, N, W)
end

local Block = class("TransformerBlock", Module)
M.TransformerBlock = Block
function Block:__init(width, heads, mlp_ratio, o)
  Module.__init(self)
  self:add_module("norm1", L.LayerNorm(width, opts(o)))
  self:add_module("attn", Attention(width, heads, o))
  self:add_module("norm2", L.LayerNorm(width, opts(o)))
  local hidden = math.floor(width * mlp_ratio)
  self:add_module("fc1", L.Linear(width, hidden, opts(o)))
  self:add_module("fc2", L.Linear(hidden, width, opts(o)))
end
function Block:forward(x)
  local B, N, W = x:size(0), x:size(1), x:size(2)
  x = x + self.attn(self.norm1(x))
  local h = self.norm2(x):reshape(B * N, W)
  h = self.fc2(self.fc1(h):gelu()):reshape(B, N, W)
  return x + h
end

local ViT = class("ViT", Module)
M.ViT = ViT
function ViT:__init(o)
  Module.__init(self)
  local size, patch = o.image_size or 28, o.patch or 7
  if size % patch ~= 0 then util.error("nn.vit: image_size %d is not divisible by patch %d", size, patch) end
  local width = o.width or 192
  self.patch, self.width = patch, width
  self.n_patches = (size / patch) ^ 2
  self.pool = o.pool or (o.cls == false and "mean" or "cls")
  self.use_cls = o.cls ~= false
  self:add_module("patch_embed", L.Conv2d(o.in_channels or 3, width, patch, with(o, { stride = patch })))
  local tokens = self.n_patches + (self.use_cls and 1 or 0)
  if self.use_cls then
    self:register_parameter("cls_token", I.trunc_normal_(tensor.empty({ 1, 1, width }, opts(o)), 0, 0.02))
  end
  self:register_parameter("pos_embed", I.trunc_normal_(tensor.empty({ 1, tokens, width }, opts(o)), 0, 0.02))
  self:add_module("blocks", L.Sequential())
  for _ = 1, o.depth or 6 do self.blocks:add(Block(width, o.heads or 3, o.mlp_ratio or 4, o)) end
  self:add_module("norm", L.LayerNorm(width, opts(o)))
  self.out_dim = width
end
function ViT:forward(x)
  local B = x:size(0)
  local t = self.patch_embed(x):flatten(2):transpose(1, 2) -- B x N x W
  if self.use_cls then
    t = tensor.cat({ self.cls_token:expand(B, 1, self.width), t }, 1)
  end
  t = t + self.pos_embed
  t = self.norm(self.blocks(t))
  if self.pool == "cls" and self.use_cls then return t:select(1, 0) end
  return t:mean(1)
end
function ViT:extra_repr() return string.format("patch=%d, width=%d, pool=%s", self.patch, self.width, self.pool) end

-- vit{image_size=28, patch=7, in_channels=3, width=192, depth=6, heads=3, mlp_ratio=4, cls=true,
-- pool="cls"|"mean"}: patch embedding, learned positions, pre-norm transformer blocks
function M.vit(o)
  o = o or {}
  util.check_keys("nn.vit", o, { "image_size", "patch", "in_channels", "width", "depth", "heads", "mlp_ratio", "cls",
    "pool", "dtype", "device" })
  return ViT(o)
end

return M
