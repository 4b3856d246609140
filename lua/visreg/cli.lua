-- visreg.cli: the `visreg train` and `visreg eval` commands (tools/cmd_train.c, cmd_eval.c call
-- these with the command-line arguments). Each returns the process exit status.
local util = require "visreg.util"
local recipe = require "visreg.recipe"

local M = {}

local function fail(msg)
  io.stderr:write("visreg: ", msg, "\n")
  return 2
end

local TRAIN_USAGE = [[usage: visreg train RECIPE.lua [--set key.path=value ...] [--out DIR] [--resume DIR] [--force]
                    [--device cpu|cuda|auto] [--quiet]
  --set key=value  overrides a recipe value (numbers, strings, true/false, lists as {a,b})
  --out DIR        the run folder (default runs/NAME-DATE); one that holds a run is refused
  --force          starts over in an --out folder that holds a run: its files move to DIR/replaced-DATE/
  --resume DIR     continues the run in DIR from its checkpoint (RECIPE defaults to DIR/recipe.lua);
                   nothing in DIR changes until the checkpoint and the recipe have loaded
  --device D       overrides the recipe's device
  --stop-at-epoch E  saves a checkpoint after epoch E and stops (status 0), to be resumed later]]

-- option parsing shared by train, eval and bench train (visreg.bench): spec maps an option name to
-- "flag", "value" or "list"; returns positional args and options, or nil, message
local function parse(args, spec)
  local pos, o = {}, { set = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    if a == "-h" or a == "--help" then
      o.help = true
    elseif name then
      local kind = spec[name]
      if not kind then return nil, "unknown option --" .. name end
      if kind == "flag" then
        o[name] = true
      else
        local v = inline
        if v == nil then
          i = i + 1
          v = args[i]
        end
        if v == nil then return nil, "--" .. name .. " needs a value" end
        if kind == "list" then o[name][#o[name] + 1] = v else o[name] = v end
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return pos, o
end

-- runs fn; an error becomes "visreg: message" on stderr (a traceback with VISREG_TRACEBACK) and
-- status 1, else fn's result
local function run_protected(fn)
  local ok, res = xpcall(fn, function(e)
    if type(e) == "string" and os.getenv("VISREG_TRACEBACK") and not e:find("stack traceback:", 1, true) then
      return debug.traceback(e, 2)
    end
    return e
  end)
  if not ok then
    io.stderr:write("visreg: ", tostring(res), "\n")
    return 1
  end
  return res
end

function M.train(args)
  local pos, o = parse(args, { set = "list", out = "value", resume = "value", device = "value", quiet = "flag",
    force = "flag", ["stop-at-step"] = "value", ["stop-at-epoch"] = "value" })
  if not pos then return fail(o .. "\n" .. TRAIN_USAGE) end
  if o.help then print(TRAIN_USAGE); return 0 end
  if #pos > 1 then return fail("expected one recipe, got " .. #pos .. "\n" .. TRAIN_USAGE) end
  local path = pos[1]
  local overrides = {}
  if o.resume then
    if not util.is_dir(o.resume) then return fail("--resume " .. o.resume .. ": not a run folder") end
    local run = util.read_file(o.resume .. "/run.json")
    if run then
      local ok, j = pcall(util.json_decode, run)
      if ok and type(j) == "table" and type(j.overrides) == "table" then overrides = j.overrides end
    end
    path = path or (o.resume .. "/recipe.lua")
    o.out = o.out or o.resume
  end
  if not path then return fail("a recipe is required\n" .. TRAIN_USAGE) end
  for _, s in ipairs(o.set) do overrides[#overrides + 1] = s end
  if o.device and o.device ~= "cpu" and o.device ~= "cuda" and o.device ~= "auto" then
    return fail("--device: expected cpu, cuda or auto, got " .. o.device)
  end
  local rc = run_protected(function()
    local r, source = recipe.load(path, overrides)
    local out = o.out or ("runs/" .. (r.name or "run") .. "-" .. os.date("%Y%m%d-%H%M%S"))
    local trainer = require "visreg.trainer"
    local summary, _, status = trainer.train(r, { out = out, resume = o.resume, force = o.force, device = o.device,
      quiet = o.quiet, source = source, recipe_path = path, overrides = overrides, stop_at_step = tonumber(o["stop-at-step"]),
      stop_at_epoch = tonumber(o["stop-at-epoch"]) })
    if status == "paused" then
      if not o.quiet then print(string.format("paused after epoch %s: resume with --resume %s", o["stop-at-epoch"], out)) end
      return 0
    end
    if not summary then return 130 end
    return 0
  end)
  return require("visreg.trainer_dist").finish(rc) -- several ranks: leave the job, or end it on an error
end

local EVAL_USAGE = [[usage: visreg eval RUN_DIR | CHECKPOINT [--recipe FILE] [--device cpu|cuda|auto] [--set key=value ...]
  linear probe and kNN of the encoder in a run folder or checkpoint; writes eval.json beside it.
  The model is rebuilt from the run folder's recipe.lua (with run.json's overrides), or from
  --recipe FILE (needed for a checkpoint outside a run folder); the recipe stored in the
  checkpoint is never run, only compared with it.]]

function M.eval(args)
  local pos, o = parse(args, { device = "value", set = "list", quiet = "flag", recipe = "value" })
  if not pos then return fail(o .. "\n" .. EVAL_USAGE) end
  if o.help then print(EVAL_USAGE); return 0 end
  if #pos ~= 1 then return fail("expected one run folder or checkpoint\n" .. EVAL_USAGE) end
  if o.device and o.device ~= "cpu" and o.device ~= "cuda" and o.device ~= "auto" then
    return fail("--device: expected cpu, cuda or auto, got " .. o.device)
  end
  return run_protected(function()
    local trainer = require "visreg.trainer"
    local embedding = require "visreg.embedding"
    local path = pos[1]
    local dir, ckpt = path, nil
    if not util.is_dir(path) then
      if not util.file_exists(path) then error(path .. ": no such run folder or checkpoint", 0) end
      dir, ckpt = path:match("^(.*)/[^/]*$") or ".", path
      if not o.recipe and not util.file_exists(dir .. "/recipe.lua") then
        error(string.format("%s: a checkpoint outside a run folder: give the recipe it was trained with, --recipe FILE " ..
          "(the recipe stored in a checkpoint is never run)", path), 0)
      end
    end
    if o.recipe and not util.file_exists(o.recipe) then error("--recipe " .. o.recipe .. ": cannot open it", 0) end
    local run = embedding.load_run(dir, { checkpoint = ckpt, recipe = o.recipe, overrides = o.set, device = o.device })
    if run.warning then io.stderr:write("warning: ", run.warning, "\n") end
    local t = run.trainer
    local res = trainer.evaluate(t)
    res.checkpoint = run.checkpoint
    res.epoch = t.state.epoch
    res.step = t.state.step
    util.write_file(run.dir .. "/eval.json", util.json_encode(res, "  ") .. "\n")
    print(string.format("%s (epoch %d): linear probe %s, kNN %s", run.checkpoint, res.epoch,
      res.linear_probe and string.format("%.2f%%", 100 * res.linear_probe) or "-",
      res.knn and string.format("%.2f%%", 100 * res.knn) or "-"))
    return 0
  end)
end

-- `visreg repl RUN_DIR`: loads the run's recipe and checkpoint and sets globals for probing:
-- r (the recipe), trainer (data, models), enc, proj, ds (train and test datasets). args[2] "--quiet":
-- no line saying so (the REPL's -e and piped input)
function M.repl_setup(args)
  local dir = args[1]
  local quiet = args[2] == "--quiet"
  -- the model is rebuilt from the folder's recipe.lua: nothing stored in the checkpoint is run
  local probing = require "visreg.probing"
  local run = probing.load_run(dir)
  local t, r = run.trainer, run.recipe
  probing.current = run
  _G.run, _G.r, _G.trainer, _G.enc, _G.proj, _G.ds = run, r, t, t.enc, t.proj, t.ds
  local doc = require "visreg.doc"
  local from = string.format("\nFrom %s (epoch %d).", run.dir, t.state.epoch)
  doc.add(run, "run", "The run (load_run): recipe, trainer, enc, proj, ds, summary, history (metrics.jsonl's epochs)." .. from,
    { group = "run" })
  doc.add(r, "r", "The run's recipe, resolved (defaults filled, overrides applied)." .. from, { group = "run" })
  doc.add(t, "trainer", "The run's trainer: data, models, optimizers; vr.trainer.evaluate(trainer) runs the linear\n" ..
    "probe and kNN." .. from, { group = "run" })
  doc.add(t.enc, "enc", "The run's encoder, in eval mode: enc(x) gives the features of images x." .. from, { group = "run" })
  doc.add(t.proj, "proj", "The run's projector, in eval mode: proj(enc(x)) gives the embeddings." .. from, { group = "run" })
  doc.add(t.ds, "ds", "The run's datasets, ds.train and ds.test: E = embed(ds.test) embeds one.", { group = "run" })
  if run.warning then io.stderr:write("warning: ", run.warning, "\n") end
  if not quiet then
    print(string.format("loaded %s (%s, epoch %d): globals run, r, trainer, enc, proj, ds; start with E = embed(ds.test)",
      run.dir, r.name, t.state.epoch))
  end
  return 0
end

M.parse = parse
M.run_protected = run_protected

return M
