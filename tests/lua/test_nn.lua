-- nn modules: output shapes, parameters and buffers, train/eval, state_dict round trips, PyTorch
-- initialisation bounds, and gradients against central finite differences on a tiny f64 MLP
local tap = require "tap"
local vr = require "visreg"
local nn = vr.nn

vr.manual_seed(0)
local f64 = { dtype = "f64" }

-- shapes
local x = vr.randn(4, 1, 28, 28)
local cnn = nn.smallcnn { width = 8 }
tap.eq(cnn(x):shape_str(), "[4, 32]", "smallcnn maps 28x28 images to 4*width features")
tap.eq(cnn.out_dim, 32, "smallcnn out_dim")
tap.eq(nn.smallcnn { width = 8, pool = 2 }(x):shape_str(), "[4, 128]", "smallcnn pool=2 keeps a 2x2 layout")
local mlp = nn.mlp { 32, 64, 16 }
tap.eq(mlp(cnn(x)):shape_str(), "[4, 16]", "mlp output shape")
tap.eq(#mlp:named_parameters(), 6, "mlp: two Linear (weight, bias) and one BatchNorm1d (weight, bias)")
tap.eq(#mlp:named_buffers(), 2, "BatchNorm1d keeps running mean and var as buffers")
tap.eq(mlp:named_parameters()[3][1], "1.weight", "parameters are named by position like PyTorch")
local res = nn.resnet18 { in_channels = 1, stem = "cifar", width = 4 }
tap.eq(res(vr.randn(2, 1, 16, 16)):shape_str(), "[2, 32]", "resnet18 (cifar stem) output shape")
tap.eq(res.out_dim, 32, "resnet18 out_dim is 8 * width")
local nconv = 0
for _, e in ipairs(res:named_parameters()) do if e[2]:dim() == 4 then nconv = nconv + 1 end end
tap.eq(nconv, 20, "resnet18 has 17 + 3 shortcut convolutions")
local inet = nn.resnet18 { in_channels = 3, stem = "imagenet", width = 4 }
tap.eq(inet(vr.randn(2, 3, 32, 32)):shape_str(), "[2, 32]", "resnet18 (imagenet stem) output shape")
local vit = nn.vit { image_size = 28, patch = 7, in_channels = 1, width = 16, depth = 2, heads = 2 }
tap.eq(vit(vr.randn(3, 1, 28, 28)):shape_str(), "[3, 16]", "vit output shape (cls token)")
tap.eq(vit.pos_embed:shape_str(), "[1, 17, 16]", "vit learned positions for 16 patches and the cls token")
local seq = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2),
  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3), nn.GELU(), nn.LayerNorm(3), nn.Dropout(0.5))
tap.eq(seq(vr.randn(2, 1, 8, 8)):shape_str(), "[2, 3]", "Sequential of every layer kind")
tap.ok(tostring(seq):find("Conv2d(1, 4, kernel_size=3x3", 1, true), "modules print as a tree", tostring(seq))

-- PyTorch default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for Linear
local lin = nn.Linear(100, 50)
local bound = 1 / math.sqrt(100)
local w = lin.weight
tap.ok(w:max():item() <= bound and w:min():item() >= -bound and w:max():item() > 0.9 * bound,
  "Linear weight is kaiming_uniform(a=sqrt 5): within 1/sqrt(fan_in)")
tap.near(w:std():item(), bound / math.sqrt(3), 0.05, "Linear weight has the uniform's std")
vr.manual_seed(7)
local l1 = nn.Linear(5, 5)
vr.manual_seed(7)
local l2 = nn.Linear(5, 5)
tap.all_near(l1.weight:to_list(), l2.weight:to_list(), 0, "initialisation is reproducible from the seed")

-- train / eval and BatchNorm running statistics
local bn = nn.BatchNorm1d(3)
local xb = vr.randn(64, 3) * 2 + 5
bn:train()
bn(xb)
tap.near(bn.running_mean:mean():item(), 0.5, 0.1, "training updates the running mean with momentum 0.1")
bn:eval()
local ye = bn(xb)
tap.ok(math.abs(ye:mean():item()) > 1, "eval uses the running statistics")
tap.ok(not bn.training and mlp.training, "eval() is per module tree")

-- state_dict round trip
local m1 = nn.mlp { 4, 8, 2, dtype = "f64" }
local m2 = nn.mlp { 4, 8, 2, dtype = "f64" }
m1:train()
m1(vr.randn(16, 4, f64))
m2:load_state_dict(m1:state_dict())
local xin = vr.randn(5, 4, f64)
m1:eval(); m2:eval()
tap.all_near(m2(xin):to_list(), m1(xin):to_list(), 0, "load_state_dict copies parameters and buffers")
tap.raises(function() m2:load_state_dict({ ["0.weight"] = vr.zeros(8, 4, f64) }) end, { "missing key" }, "strict loading refuses missing keys")
local sd = m1:state_dict()
sd["0.weight"] = vr.zeros(3, 3, f64)
tap.raises(function() m2:load_state_dict(sd) end, { "0.weight", "shape" }, "loading checks shapes")

-- gradients against central finite differences (f64, eval-mode BN is affine, train-mode BN is not)
local function gradcheck(model, input, what)
  local weights = vr.randn(input:size(0), model(input):size(1), f64)
  local function f() return (model(input) * weights):sum() end
  model:zero_grad()
  f():backward()
  local worst = 0
  vr.no_grad(function()
    for _, e in ipairs(model:named_parameters()) do
      local p = e[2]
      local g = p:grad():to_list()
      local n = p:numel()
      local flat = p:view(-1)
      for i = 0, n - 1 do
        local v = flat:get(i)
        flat:set(i, v + 1e-6)
        local fp = f():item()
        flat:set(i, v - 1e-6)
        local fm = f():item()
        flat:set(i, v)
        local num = (fp - fm) / 2e-6
        worst = math.max(worst, math.abs(num - g[i + 1]) / math.max(1, math.abs(num)))
      end
    end
  end)
  tap.ok(worst < 1e-6, what, "worst relative error " .. worst)
end
vr.manual_seed(3)
local tiny = nn.mlp { 3, 5, 4, 2, norm = "batch", act = "tanh", dtype = "f64" }
tiny:train()
gradcheck(tiny, vr.randn(6, 3, f64), "MLP with batch norm (training): gradients match finite differences")
local tiny_ln = nn.mlp { 3, 5, 2, norm = "layer", act = "gelu", dtype = "f64" }
gradcheck(tiny_ln, vr.randn(4, 3, f64), "MLP with layer norm and GELU: gradients match finite differences")
local conv = nn.Sequential(nn.Conv2d(2, 3, 3, { padding = 1, stride = 2, dtype = "f64" }), nn.BatchNorm2d(3, f64), nn.ReLU(),
  nn.AdaptiveAvgPool2d(1), nn.Flatten())
gradcheck(conv, vr.randn(3, 2, 5, 5, f64), "conv, BatchNorm2d and pooling: gradients match finite differences")
local block = nn.Sequential(nn.BasicBlock(2, 4, 2, f64), nn.AdaptiveAvgPool2d(1), nn.Flatten())
gradcheck(block, vr.randn(2, 2, 4, 4, f64), "residual BasicBlock: gradients match finite differences")
local tvit = nn.vit { image_size = 4, patch = 2, in_channels = 1, width = 4, depth = 1, heads = 2, mlp_ratio = 1, dtype = "f64" }
gradcheck(tvit, vr.randn(2, 1, 4, 4, f64), "ViT (attention, layer norm, cls, positions): gradients match finite differences")

-- errors name the module
tap.raises(function() local y = nn.Linear(3, 2)(vr.randn(4, 5)); return y end, { "vr_linear" }, "a wrong input size raises the C message")
tap.raises(function() nn.mlp { 3, 4, 5, norm = "group" } end, { "nn.mlp", "norm" }, "builders check their options")
tap.raises(function() nn.smallcnn { widht = 3 } end, { "unknown key 'widht'", "width" }, "builders refuse unknown options")

os.exit(tap.done(), true)
