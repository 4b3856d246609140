-- visreg.nn: modules (PyTorch-shaped), the model builders and nn.init.
local mod = require "visreg.nn.module"
local layers = require "visreg.nn.layers"
local models = require "visreg.nn.models"

local nn = {}
nn.Module = mod.Module
nn.class = mod.class
nn.isinstance = mod.isinstance
for k, v in pairs(layers) do nn[k] = v end
nn.BasicBlock = models.BasicBlock
nn.Attention = models.Attention
nn.TransformerBlock = models.TransformerBlock
nn.ViT = models.ViT
nn.mlp = models.mlp
nn.smallcnn = models.smallcnn
nn.resnet18 = models.resnet18
nn.vit = models.vit
nn.init = require "visreg.nn.initializers"
nn.functional = require "visreg.functional"

return nn
