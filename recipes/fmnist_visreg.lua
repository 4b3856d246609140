-- The default recipe (`make run`): VISReg on Fashion-MNIST with a small CNN, sized for a 2-core
-- CPU (recipes/base/fmnist.lua holds everything but the loss and the learning rate): over 90%
-- linear probe in under five minutes of training and evaluation on 2 cores
-- (recipes/sweeps/default_recipe.yaml, then default_recipe_variations.yaml). Try:
--   bin/visreg train recipes/fmnist_visreg.lua --set loss.lambda=0.7 --out runs/a
local vr = require "visreg"

return vr.recipe.extend("base/fmnist.lua", {
  loss = vr.loss.visreg { lambda = 0.6, slices = 1024, weights = { scale = 1, shape = 1, center = 1 } },
  -- a learning rate of 3e-3 (the base's 2e-3 otherwise): recipes/sweeps/default_recipe_variations.yaml
  optim = { lr = 3e-3 },
})
