-- Fashion-MNIST with plain sliced Wasserstein to a Gaussian on raw embeddings (no centring or
-- scaling), mixed with invariance, on the base of the other Fashion-MNIST recipes (recipes/base/fmnist.lua).
local vr = require "visreg"

return vr.recipe.extend("base/fmnist.lua", {
  loss = vr.loss.swd { lambda = 0.6, slices = 1024 },
})
