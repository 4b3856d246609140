-- The default recipe (`make run`): VISReg on Fashion-MNIST with a small CNN, sized for a 2-core
-- CPU (recipes/base/fmnist.lua holds everything but the loss). Its encoder's features are pooled
-- to a 4 x 4 grid (1024 of them) and it trains 5 epochs: the choice of
-- recipes/sweeps/default_recipe.yaml, over 90% linear probe in under five minutes on 2 cores.
-- Try:
--   bin/visreg train recipes/fmnist_visreg.lua --set loss.lambda=0.7 --out runs/a
local vr = require "visreg"

return vr.recipe.extend("base/fmnist.lua", {
  epochs = 5,
  model = { pool = 4 },
  loss = vr.loss.visreg { lambda = 0.6, slices = 1024, weights = { scale = 1, shape = 1, center = 1 } },
})
