-- Fashion-MNIST with SIGReg (LeJEPA's Epps-Pulley test on random slices; its loss grows with the
-- batch, so lambda is small), on the base of the other Fashion-MNIST recipes (recipes/base/fmnist.lua).
local vr = require "visreg"

return vr.recipe.extend("base/fmnist.lua", {
  loss = vr.loss.sigreg { lambda = 0.02, slices = 1024, knots = 17, t_max = 3 },
})
