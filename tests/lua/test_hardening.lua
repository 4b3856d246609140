-- hardening, tried as an attacker or an unlucky user would: a checkpoint that carries code, one
-- whose tensors are relabelled, fresh runs into run folders, runs killed or failing half-way and
-- resumed, out-of-range recipe values, NaN inputs, a diverging learning rate, and an error in a
-- schedule that must shut the loader down cleanly
local tap = require "tap"
local vr = require "visreg"
local util = vr.util

if not tap.can_train("hardening") then os.exit(tap.done(), true) end

local exe = VISREG_EXE
local q = util.shell_quote
local sh = tap.sh
local base = tap.scratch("hardening")

-- a tiny run: 8 steps of 64 x 2 views; the schedule reads hooks from the environment: a SIGKILL or
-- a SIGINT sent to itself at a step, or an error raised at a step (as a crash, a Ctrl-C, a bug)
local recipe = base .. "/tiny.lua"
util.write_file(recipe, [[
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment
return vr.recipe {
  seed = 3, epochs = 1, batch = 64, device = "cpu",
  data = vr.data.fashion_mnist { subset = 512, test_subset = 500 },
  views = { global = { n = 2, pipeline = { aug.random_resized_crop { scale = { 0.5, 1 } }, aug.hflip { p = 0.5 },
    aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = { width = 8, build = function(m)
    local enc = nn.smallcnn { width = m.width }
    return enc, nn.mlp { enc.out_dim, 64, 32 }
  end },
  loss = vr.loss.visreg { lambda = 0.6, slices = 64 },
  optim = vr.optim.adamw { lr = 3e-3, weight_decay = 0.01 },
  schedule = { lr = function(epoch, step)
    local function at(name) return tonumber(os.getenv(name) or "") == step end
    if at("VISREG_TEST_ERROR_AT") then error("schedule failed at step " .. step) end
    if at("VISREG_TEST_KILL_AT") or at("VISREG_TEST_SIGINT_AT") then
      local ffi = require "ffi"
      pcall(ffi.cdef, "int getpid(void); int kill(int pid, int sig);")
      ffi.C.kill(ffi.C.getpid(), at("VISREG_TEST_KILL_AT") and 9 or 2)
    end
    return 3e-3
  end },
  eval = { probe_iters = 50, probe_l2 = { 1e-3 } },
  log = { every = 1, progress = "plain" },
  loader = { workers = 2 },
}
]])
local SCHEDULE_LINE = 16 -- the line of `if at("VISREG_TEST_ERROR_AT") then error(...)`

local function train(args, env) return sh((env or "") .. " " .. q(exe) .. " train " .. q(recipe) .. " " .. args) end
local function visreg(args, env) return sh((env or "") .. " " .. q(exe) .. " " .. args) end
local function exists(p) return util.file_exists(p) or util.is_dir(p) end
local function metrics(dir)
  local out = {}
  for line in io.lines(dir .. "/metrics.jsonl") do out[#out + 1] = util.json_decode(line) end
  return out
end
local t0 = vr.now()

---------------------------------------------------------------- a checkpoint is data, never code
local A = base .. "/a"
local rc, out = train("--quiet --out " .. q(A))
tap.ok(rc == 0 and util.file_exists(A .. "/summary.json"), "a tiny run trains", out)
local marker = base .. "/MARKER"
local evil = string.format('os.execute("touch %s")\nreturn dofile(%q)\n', marker, recipe)
do
  local tensors, meta = vr.checkpoint.load(A .. "/checkpoint.safetensors")
  meta.recipe_source = evil
  vr.checkpoint.save(A .. "/checkpoint.safetensors", tensors, meta)
end
rc, out = visreg("eval " .. q(A))
tap.ok(rc == 0 and not exists(marker), "visreg eval RUN_DIR does not run the checkpoint's recipe", out)
tap.ok(out:find("differs from the recipe saved in", 1, true), "eval warns that the stored recipe differs", out)
rc, out = visreg("repl " .. q(A) .. " -e 1")
tap.ok(rc == 0 and not exists(marker), "visreg repl RUN_DIR -e 1 does not run it", out)
os.execute("cp " .. q(A .. "/checkpoint.safetensors") .. " " .. q(base .. "/bare.safetensors"))
rc, out = visreg("eval " .. q(base .. "/bare.safetensors"))
tap.ok(rc == 1 and out:find("--recipe FILE", 1, true) and not exists(marker),
  "eval of a checkpoint outside a run folder asks for --recipe and runs nothing", out)
rc, out = visreg("eval " .. q(base .. "/bare.safetensors") .. " --recipe " .. q(recipe))
tap.ok(rc == 0 and out:find("linear probe", 1, true) and not exists(marker), "eval CHECKPOINT --recipe FILE evaluates it", out)
rc, out = visreg("train --resume " .. q(A) .. " --quiet")
tap.ok(rc == 0 and not exists(marker), "train --resume rebuilds from the folder's recipe, not the checkpoint's", out)

-- a tensor relabelled F32 -> I32 (the same bytes), or given another shape of the same size
local function patch_header(path, from, to)
  local s = util.read_file(path)
  local i, j = s:find(from, 1, true)
  assert(i, "no " .. from .. " in " .. path)
  assert(#from == #to)
  util.write_file(path, s:sub(1, i - 1) .. to .. s:sub(j + 1))
end
local D = base .. "/dtype"
os.execute("cp -r " .. q(A) .. " " .. q(D))
patch_header(D .. "/checkpoint.safetensors", '"encoder.0.weight":{"dtype":"F32"', '"encoder.0.weight":{"dtype":"I32"')
rc, out = visreg("eval " .. q(D))
tap.ok(rc == 1 and out:find("encoder.0.weight", 1, true) and out:find("expected dtype f32, got i32", 1, true),
  "a tensor relabelled as I32 is refused, naming it", out)
os.execute("cp " .. q(A .. "/checkpoint.safetensors") .. " " .. q(D .. "/checkpoint.safetensors"))
patch_header(D .. "/checkpoint.safetensors", '"optim.projector.0.weight.exp_avg":{"dtype":"F32"',
  '"optim.projector.0.weight.exp_avg":{"dtype":"I32"')
rc, out = visreg("train --resume " .. q(D) .. " --set epochs=2 --quiet")
tap.ok(rc == 1 and out:find("optim.projector.0.weight.exp_avg", 1, true) and out:find("dtype", 1, true),
  "optimizer state relabelled as I32 is refused on resume, naming it", out)
os.execute("cp " .. q(A .. "/checkpoint.safetensors") .. " " .. q(D .. "/checkpoint.safetensors"))
patch_header(D .. "/checkpoint.safetensors", '"projector.0.weight":{"dtype":"F32","shape":[64,32]',
  '"projector.0.weight":{"dtype":"F32","shape":[32,64]')
rc, out = visreg("eval " .. q(D))
tap.ok(rc == 1 and out:find("projector.0.weight", 1, true) and out:find("expected shape", 1, true),
  "a tensor given another shape of the same size is refused, naming it", out)

---------------------------------------------------------------- run folders never lose results
local before = util.read_file(A .. "/summary.json")
local ckpt_before = util.read_file(A .. "/checkpoint.safetensors")
util.write_file(A .. "/trial.json", "{}\n")
rc, out = train("--quiet --out " .. q(A))
tap.ok(rc == 1 and out:find("holds a run", 1, true) and out:find("--force", 1, true), "a fresh run into a run folder is refused", out)
tap.ok(util.read_file(A .. "/summary.json") == before and util.read_file(A .. "/checkpoint.safetensors") == ckpt_before,
  "the refused run changed nothing")
-- --force, killed once it has started: the old run is whole in replaced-*/, nothing of it is resumed
local cmd = "( " .. q(exe) .. " train " .. q(recipe) .. " --set epochs=20 --force --quiet --out " .. q(A) .. " & pid=$!; i=0;" ..
  " while ! { ls -d " .. q(A) .. "/replaced-* >/dev/null 2>&1 && grep -q '\"step\"' " .. q(A .. "/metrics.jsonl") ..
  " 2>/dev/null; } && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done;" ..
  " kill -9 $pid; wait $pid )"
rc, out = sh(cmd)
local replaced = util.list_dir(A)
local moved
for _, name in ipairs(replaced) do if name:match("^replaced%-%d+%-%d+") then moved = A .. "/" .. name end end
tap.ok(rc == 137 and moved and util.read_file(moved .. "/summary.json") == before and
  util.read_file(moved .. "/checkpoint.safetensors") == ckpt_before and util.file_exists(moved .. "/metrics.jsonl"),
  "with --force the old run's files move whole to replaced-*/, even when the new run is killed", out)
tap.ok(moved and util.file_exists(A .. "/trial.json") and not util.file_exists(moved .. "/trial.json"),
  "files the trainer does not write stay where they are")
tap.ok(not util.file_exists(A .. "/checkpoint.safetensors") and not util.file_exists(A .. "/summary.json"),
  "the killed run left no checkpoint or summary of the old run in the folder")
rc, out = visreg("train --resume " .. q(A) .. " --quiet")
tap.ok(rc == 1 and out:find("no " .. A .. "/checkpoint.safetensors", 1, true), "nothing of the old run is resumed", out)

-- a failed resume changes nothing; a correct one then works
local B = base .. "/b"
rc, out = train("--set epochs=2 --quiet --out " .. q(B), "VISREG_TEST_KILL_AT=11")
tap.ok(rc == 137 and util.file_exists(B .. "/checkpoint.safetensors"), "a run killed in its second epoch keeps its checkpoint", out)
local files = {}
for _, f in ipairs { "recipe.lua", "recipe.json", "run.json", "metrics.jsonl", "checkpoint.safetensors" } do
  files[f] = util.read_file(B .. "/" .. f)
end
local function unchanged()
  for f, s in pairs(files) do if util.read_file(B .. "/" .. f) ~= s then return false, f .. " changed" end end
  return true
end
rc, out = visreg("train --resume " .. q(B) .. " --set model.width=16 --quiet")
tap.ok(rc == 1 and out:find("encoder.0.weight", 1, true) and out:find("expected shape", 1, true),
  "a resume whose recipe does not fit the checkpoint is refused", out)
tap.ok(unchanged(), "the failed resume changed nothing in the folder", select(2, unchanged()))
rc, out = visreg("train --resume " .. q(B) .. " --set loss.lambda=2 --quiet")
tap.ok(rc == 1 and out:find("lambda", 1, true) and unchanged(), "a resume with a bad --set is refused and changes nothing", out)
-- what a crash leaves: a line cut short, temporary files
local f = io.open(B .. "/metrics.jsonl", "ab")
f:write('{"type":"step","epoch":1,"st')
f:close()
util.write_file(B .. "/checkpoint.safetensors.tmp.99999", "partial")
local tf = io.open(B .. "/metrics.jsonl.tmp", "wb")
tf:write("partial")
tf:close()
rc, out = visreg("train --resume " .. q(B) .. " --quiet")
tap.ok(rc == 0 and util.file_exists(B .. "/summary.json"), "the correct resume then finishes the run", out)
local m = metrics(B)
local steps, epochs, dup, last = 0, {}, false, 0
for _, l in ipairs(m) do
  if l.type == "step" then
    steps = steps + 1
    if l.step <= last then dup = true end
    last = l.step
  else
    epochs[#epochs + 1] = l.epoch
  end
end
tap.ok(steps == 16 and not dup and #epochs == 2 and epochs[1] == 0 and epochs[2] == 1,
  "after the crash and the resume, metrics.jsonl has each step once and both epochs",
  string.format("%d step lines, duplicates %s, epochs %s", steps, tostring(dup), table.concat(epochs, ",")))
local stale = {}
for _, name in ipairs(util.list_dir(B)) do if name:find("%.tmp") then stale[#stale + 1] = name end end
tap.ok(#stale == 0, "the interrupted writes' temporary files are gone", table.concat(stale, " "))

-- Ctrl-C on the epoch's last step: the epoch's line is written, then the checkpoint
local E = base .. "/e"
rc, out = train("--set epochs=2 --out " .. q(E), "VISREG_TEST_SIGINT_AT=7")
m = metrics(E)
tap.ok(rc == 130 and m[#m].type == "epoch" and m[#m].epoch == 0 and m[#m].step == 8,
  "Ctrl-C on an epoch's last step still writes the epoch's line", out)
rc, out = visreg("train --resume " .. q(E) .. " --quiet")
m = metrics(E)
local ep = {}
for _, l in ipairs(m) do if l.type == "epoch" then ep[#ep + 1] = l.epoch end end
tap.ok(rc == 0 and table.concat(ep, ",") == "0,1", "the resumed run adds the second epoch's line", table.concat(ep, ","))

-- Ctrl-C during the final evaluation: status 130, then a resume evaluates
local V = base .. "/v"
cmd = "( " .. q(exe) .. " train " .. q(recipe) .. " --set data.test_subset=10000 --out " .. q(V) .. " & pid=$!; i=0;" ..
  " while ! grep -q '\"type\":\"epoch\"' " .. q(V .. "/metrics.jsonl") .. " 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.05;" ..
  " i=$((i+1)); done; kill -INT $pid; wait $pid )"
rc, out = sh(cmd)
tap.ok(rc == 130 and out:find("interrupted during the final evaluation", 1, true) and not util.file_exists(V .. "/summary.json"),
  "Ctrl-C during the evaluation stops with status 130", out)
rc, out = visreg("train --resume " .. q(V) .. " --quiet")
tap.ok(rc == 0 and util.file_exists(V .. "/summary.json"), "the run resumes and evaluates", out)

---------------------------------------------------------------- values are checked up front
local lines = {}
do
  local n = 0
  for line in io.lines(recipe) do
    n = n + 1
    lines[#lines + 1] = line
  end
end
local function line_of(text)
  for i, l in ipairs(lines) do if l:find(text, 1, true) then return i end end
end
local bad = {
  { "loss.lambda=1.5", "lambda", line_of("vr.loss.visreg") },
  { "loss.lambda=-0.1", "lambda", line_of("vr.loss.visreg") },
  { "loss.slices=0", "slices", line_of("vr.loss.visreg") },
  { "batch=0", "batch", line_of("batch = 64") },
  { "data.subset=-1", "subset", line_of("vr.data.fashion_mnist") },
  { "data.test_subset=-5", "test_subset", line_of("vr.data.fashion_mnist") },
  { "views.global.size=0", "size", nil },
  { "epochs=-1", "epochs", line_of("epochs = 1") },
  { "optim.lr=0", "lr", line_of("vr.optim.adamw") },
  { "optim.lr=-1", "lr", line_of("vr.optim.adamw") },
  { "views.global.pipeline.2.p=1.5", "p", line_of("aug.hflip") },
  { "views.global.pipeline.1.scale={0.9,0.2}", "scale", line_of("aug.random_resized_crop") },
  { "views.global.n=0", "views.global.n", nil },
}
for _, b in ipairs(bad) do
  local dir = base .. "/bad"
  rc, out = train("--set " .. q(b[1]) .. " --out " .. q(dir))
  local where = b[3] and (recipe .. ":" .. b[3] .. ":") or recipe
  tap.ok(rc == 1 and out:find(where, 1, true) and out:find(b[2], 1, true) and out:find("expected", 1, true) and
    not out:find("train /", 1, true) and not exists(dir),
    "--set " .. b[1] .. " is refused at the recipe's line before any data loads", out)
end
-- in the recipe itself: an augmentation's error names the recipe's line, not the library's
local bad_recipe = base .. "/bad_aug.lua"
util.write_file(bad_recipe, (util.read_file(recipe):gsub("aug.hflip { p = 0.5 }", "aug.hflip { p = 2 }")))
rc, out = sh(q(exe) .. " train " .. q(bad_recipe) .. " --out " .. q(base .. "/bad"))
tap.ok(rc == 1 and out:find(bad_recipe .. ":" .. line_of("aug.hflip") .. ": vr.augment.hflip: p:", 1, true) and
  not out:find("core.lua", 1, true), "an augmentation's bad value names the recipe's line", out)
util.write_file(bad_recipe, (util.read_file(recipe):gsub("slices = 64", "slices = 0")))
rc, out = sh(q(exe) .. " train " .. q(bad_recipe) .. " --out " .. q(base .. "/bad"))
tap.ok(rc == 1 and out:find(bad_recipe .. ":" .. line_of("vr.loss.visreg") .. ": vr.loss.visreg: slices:", 1, true),
  "slices = 0 is refused, not replaced by 1", out)

-- NaN and overflow in `visreg loss`
local zp, gp, bigp = base .. "/z.npy", base .. "/g.npy", base .. "/zbig.npy"
vr.manual_seed(1)
vr.randn(2, 16, 8):save_npy(zp)
local g = vr.randn(8, 4)
g:set(2, 1, 0 / 0)
g:save_npy(gp)
local big = vr.randn(2, 16, 8) * 1e25
big:save_npy(bigp)
rc, out = visreg("loss visreg --z " .. q(zp) .. " --slices " .. q(gp))
tap.ok(rc == 1 and out:find("--slices", 1, true) and out:find("expected finite values, got nan", 1, true),
  "NaN in --slices is refused", out)
rc, out = sh("( " .. q(exe) .. " loss vicreg --z " .. q(bigp) .. " --lambda 0.5 2>/dev/null )")
local okj, j = pcall(util.json_decode, out)
tap.ok(rc == 1 and okj and type(j) == "table" and j.loss == nil and type(j.error) == "string" and j.error:find("overflow")
  and not out:find(":%s*%-?nan") and not out:find(":%s*%-?inf"),
  "a loss that overflows prints valid JSON with null and the reason", out)

-- a learning rate that makes the loss diverge says so
local plain = base .. "/plain.lua" -- no schedule: the learning rate is the recipe's
util.write_file(plain, (util.read_file(recipe):gsub("schedule = {.-\n  end },", "schedule = {},")))
rc, out = sh(q(exe) .. " train " .. q(plain) .. " --set optim.lr=1e30 --quiet --out " .. q(base .. "/div"))
tap.ok(rc == 1 and out:find("loss became nan at step %d+ %(lr 1e%+30%): lower optim%.lr") and
  not out:find("expected finite values", 1, true), "a diverging learning rate is named, with the step", out)

-- a scheduled value keeps its key's rule at every step
local sched = base .. "/sched.lua"
util.write_file(sched, (util.read_file(plain):gsub("schedule = {},",
  'schedule = { ["loss.lambda"] = function(epoch, step) return step == 2 and 1.5 or 0.6 end },')))
rc, out = sh(q(exe) .. " train " .. q(sched) .. " --quiet --out " .. q(base .. "/sched"))
tap.ok(rc == 1 and out:find("schedule['loss.lambda'] at epoch 0, step 2: loss.lambda: expected a number in [0, 1], got 1.5",
  1, true), "a schedule that leaves its key's range is stopped, naming the step", out)

---------------------------------------------------------------- an error mid-run shuts down cleanly
local function schedule_error(bin, env)
  local crashed, bad_out = 0, nil
  for i = 1, 3 do
    local dir = string.format("%s/err%d", base, i)
    local r2, o2 = sh((env or "") .. " VISREG_TEST_ERROR_AT=3 " .. q(bin) .. " train " .. q(recipe) .. " --quiet --out " .. q(dir))
    if r2 ~= 1 or not o2:find(recipe .. ":" .. SCHEDULE_LINE .. ": schedule failed at step 3", 1, true) or
      o2:find("Sanitizer", 1, true) or o2:find("runtime error", 1, true) then
      crashed, bad_out = crashed + 1, string.format("status %s: %s", tostring(r2), o2)
    end
  end
  return crashed == 0, bad_out
end
local clean, why = schedule_error(exe)
tap.ok(clean, "a schedule error at step 3 exits 1 with the recipe's line, without crashing (3 tries)", why)
local asan = "build-asan/visreg"
if exe ~= asan and util.file_exists(asan) then
  local r3, o3 = sh("VISREG_LUA_PATH=lua VISREG_TEST_ERROR_AT=3 " .. asan .. " train " .. q(recipe) .. " --quiet --out " ..
    q(base .. "/err_asan"))
  tap.ok(r3 == 1 and o3:find("schedule failed at step 3", 1, true) and not o3:find("Sanitizer", 1, true),
    "the same under AddressSanitizer: no use after free", o3)
else
  tap.skip("the schedule error under AddressSanitizer", exe == asan and "this is the ASan build" or
    "no build-asan/visreg (make asan)")
end

print(string.format("# %.1f s", vr.now() - t0))
os.execute("rm -rf " .. q(base))
os.exit(tap.done(), true)
