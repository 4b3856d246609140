-- Fashion-MNIST with the official two-view VICReg (25 invariance, 25 variance, 1 covariance; its
-- own invariance term), on the base of the other Fashion-MNIST recipes (recipes/base/fmnist.lua).
local vr = require "visreg"

return vr.recipe.extend("base/fmnist.lua", {
  loss = vr.loss.vicreg { inv = 25, var = 25, cov = 1 },
})
