-- recipes built on a base: vr.recipe.extend merges overrides into a base recipe file, the
-- Fashion-MNIST recipes share recipes/base/fmnist.lua, and the text load returns carries its
-- bases, so a run folder's recipe.lua does not depend on the base files
local tap = require "tap"
local vr = require "visreg"
local recipe = require "visreg.recipe"
local util = vr.util

local dir = tap.scratch("recipe_extend")
util.mkdir_p(dir .. "/base")
local base_text = [[
local vr = require "visreg"
local aug = vr.augment
return {
  seed = 1, epochs = 3, batch = 32,
  data = vr.data.fashion_mnist { subset = 512 },
  views = { global = { n = 2, pipeline = { aug.hflip { p = 0.5 }, aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = { width = 8, projector = { 64, 16 },
    build = function(m) return vr.nn.smallcnn { width = m.width }, vr.nn.mlp { 32, unpack(m.projector) } end },
  optim = vr.optim.adamw { lr = 1e-3, weight_decay = 0.05 },
  eval = { knn = { k = 20, T = 0.07 } },
}
]]
util.write_file(dir .. "/base/small.lua", base_text)
local child = [[
local vr = require "visreg"
return vr.recipe.extend("base/small.lua", {
  epochs = 5,
  model = { width = 12, projector = { 32 } },
  optim = { lr = 5e-4 },
  eval = { knn = false },
  loss = vr.loss.vicreg { inv = 25, var = 25, cov = 1 },
})
]]
util.write_file(dir .. "/child.lua", child)

local r, text = recipe.load(dir .. "/child.lua")
tap.eq(r.epochs, 5, "an override replaces a number")
tap.eq(r.seed, 1, "what the overrides leave keeps the base's value")
tap.eq(r.model.width, 12, "a table of settings merges key by key")
tap.ok(util.is_callable(r.model.build), "the base's build function stays beside the merged numbers")
tap.eq(#r.model.projector, 1, "a list replaces the base's list")
tap.eq(r.optim.kind, "adamw", "a plain table merges into the base's component")
tap.eq(r.optim.lr, 5e-4, "the component's value is overridden")
tap.eq(r.optim.weight_decay, 0.05, "the component's other values stay")
tap.eq(r.eval.knn, false, "false switches a table of settings off")
tap.eq(r.loss.kind, "vicreg", "the loss comes from the recipe")
tap.eq(r.name, "child", "the recipe is named after its own file")
tap.eq(#r.views.global.pipeline, 2, "the base's augmentations")
local swapped = recipe.merge({ loss = vr.loss.visreg { lambda = 0.6 } }, { loss = vr.loss.swd { lambda = 0.5 } })
tap.eq(swapped.loss.kind, "swd", "a component with a kind replaces the base's whole")
tap.eq(swapped.loss.slices, vr.loss.swd {}.slices, "nothing of the replaced component remains")

-- the text a run folder keeps: the recipe's own, with its base bundled on the first line
tap.ok(text:find("^require%(\"visreg.recipe\"%)%.bundle") ~= nil, "load bundles the base into the recipe's text")
tap.eq(select(2, text:gsub("\n", "")), select(2, child:gsub("\n", "")), "the bundled text keeps the recipe's line numbers")
local run = dir .. "/run"
util.mkdir_p(run)
util.write_file(run .. "/recipe.lua", text)
util.write_file(dir .. "/base/small.lua", (base_text:gsub("seed = 1", "seed = 7")))
local again = recipe.load(run .. "/recipe.lua")
tap.eq(again.seed, 1, "the run folder's recipe runs without the base file, as it was")
-- the resolved recipe, without its name and where its functions were written
local function resolved(x) return (recipe.to_json(x):gsub('"name": "[^"]*"', ""):gsub('"<function [^"]*>"', "")) end
tap.eq(resolved(again), resolved(r), "the run folder's recipe resolves to the same recipe")
tap.eq(recipe.load(dir .. "/child.lua").seed, 7, "the recipe file itself follows its base")
local _, text2 = recipe.load(run .. "/recipe.lua")
tap.eq(text2, text, "loading a bundled recipe gives its text back unchanged")

-- errors
util.write_file(dir .. "/nobase.lua", 'return require("visreg").recipe.extend("base/none.lua", {})\n')
tap.raises(function() recipe.load(dir .. "/nobase.lua") end, { "cannot open the base recipe", "base/none.lua" },
  "a missing base is named")
util.write_file(dir .. "/base/bad.lua", "return 42\n")
util.write_file(dir .. "/badbase.lua", 'return require("visreg").recipe.extend("base/bad.lua", {})\n')
tap.raises(function() recipe.load(dir .. "/badbase.lua") end, { "must return a table" }, "a base must return a table")
util.write_file(dir .. "/typo.lua", 'local vr = require "visreg"\nreturn vr.recipe.extend("base/small.lua", {\n  lossx = 1,\n})\n')
tap.raises(function() recipe.load(dir .. "/typo.lua") end, { "unknown key 'lossx'" }, "an unknown key in the overrides is refused")
util.write_file(dir .. "/noloss.lua", 'return require("visreg").recipe.extend("base/small.lua", {})\n')
tap.raises(function() recipe.load(dir .. "/noloss.lua") end, { "the key 'loss' is required" }, "a base without a loss needs one")
tap.raises(function() recipe.load("recipes/base/fmnist.lua") end, { "recipes/base/fmnist.lua", "the key 'loss' is required" },
  "the Fashion-MNIST base alone is not a recipe: it has no loss")

-- the Fashion-MNIST recipes: the base's fields and their own loss
local want = { visreg = "visreg", vicreg = "vicreg", barlow = "barlow", sigreg = "sigreg", swd = "swd" }
local ref = recipe.load("recipes/fmnist_visreg.lua")
for name, kind in pairs(want) do
  local f = recipe.load("recipes/fmnist_" .. name .. ".lua")
  tap.eq(f.loss.kind, kind, "fmnist_" .. name .. " trains with " .. kind)
  if name ~= "visreg" then -- the base's learning rate; the default recipe sets its own
    tap.eq(f.optim.lr, 2e-3, "fmnist_" .. name .. " keeps the base's learning rate")
  end
  f.loss, f.name, f.optim.lr = ref.loss, ref.name, ref.optim.lr
  tap.eq(recipe.to_json(f), recipe.to_json(ref), "fmnist_" .. name .. " shares everything else with the base")
end

os.execute("rm -rf '" .. dir .. "'")
tap.done()
