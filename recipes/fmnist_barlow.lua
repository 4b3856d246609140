-- Fashion-MNIST with Barlow Twins (cross-correlation to the identity; its own invariance term), on
-- the base of the other Fashion-MNIST recipes (recipes/base/fmnist.lua).
local vr = require "visreg"

return vr.recipe.extend("base/fmnist.lua", {
  loss = vr.loss.barlow { offdiag = 0.0051 },
})
