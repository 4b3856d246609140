-- the commands: `visreg run` (arg table, exit status, errors with file:line and traceback),
-- `visreg train` argument errors and the unknown-key message, Ctrl-C during training
local tap = require "tap"
local vr = require "visreg"
local util = vr.util

local exe = VISREG_EXE
tap.ok(exe and util.file_exists(exe), "the host sets VISREG_EXE", tostring(exe))
tap.eq(arg[0], "tests/lua/test_cli.lua", "arg[0] is the script")

local base = tap.scratch("cli")

local sh = tap.sh
local q = util.shell_quote

-- visreg run: args, exit status, errors
local script = base .. "/s.lua"
util.write_file(script, "print(select('#', ...), arg[1], arg[2])\nreturn tonumber(arg[3]) or 0\n")
local rc, out = sh(q(exe) .. " run " .. q(script) .. " a b 3")
tap.ok(rc == 3 and out:find("3\ta\tb", 1, true), "run passes args as varargs and arg[], a returned number is the exit status", out)
util.write_file(script, "local vr = require 'visreg'\nlocal function f()\n  local t = vr.zeros(2, 3):view(7)\n  return t\nend\nf()\n")
rc, out = sh(q(exe) .. " run " .. q(script))
tap.ok(rc == 1 and out:find("s.lua:3: vr_view: shape: expected", 1, true) and out:find("stack traceback", 1, true),
  "a failing script exits 1 printing file:line, the C message and a traceback", out)
util.write_file(script, "local x = \n")
rc, out = sh(q(exe) .. " run " .. q(script))
tap.ok(rc == 1 and out:find("s.lua:2:", 1, true), "a syntax error names the file and line", out)
rc, out = sh(q(exe) .. " run " .. q(base .. "/none.lua"))
tap.ok(rc == 1 and out:find("none.lua", 1, true), "a missing script is reported", out)

-- visreg train: argument and recipe errors
rc, out = sh(q(exe) .. " train recipes/fmnist_visreg.lua --set loss.lamda=0.7 --out " .. q(base .. "/x"))
tap.ok(rc == 1 and out:find("unknown key 'loss.lamda'", 1, true) and out:find("loss.lambda", 1, true),
  "train refuses an unknown --set key, naming the nearest valid keys", out)
tap.ok(not util.is_dir(base .. "/x"), "nothing is written when the recipe is refused")
rc, out = sh(q(exe) .. " train recipes/fmnist_visreg.lua --bogus")
tap.ok(rc == 2 and out:find("unknown option --bogus", 1, true), "train refuses unknown options", out)
rc, out = sh(q(exe) .. " train --help")
tap.ok(rc == 0 and out:find("--resume DIR", 1, true), "train --help shows the usage", out)
rc, out = sh(q(exe) .. " train " .. q(base .. "/nothere.lua"))
tap.ok(rc == 1 and out:find("cannot open recipe", 1, true), "train reports a missing recipe", out)
rc, out = sh(q(exe) .. " eval " .. q(base .. "/nothere"))
tap.ok(rc == 1 and out:find("nothere", 1, true), "eval reports a missing checkpoint", out)
rc, out = sh(q(exe) .. " train recipes/fmnist_visreg.lua --set data.root=" .. q(base .. "/no_data") .. " --out " .. q(base .. "/nd"))
tap.ok(rc == 1 and out:find("cannot open '" .. base .. "/no_data/train-images-idx3-ubyte.gz'", 1, true),
  "train names the missing dataset file", out)

-- Ctrl-C saves a checkpoint and exits cleanly
if pcall(function() return vr.C.vr_visreg end) and util.file_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  local run = base .. "/int"
  -- the signal goes once training has begun (metrics.jsonl is opened then), however slow the
  -- machine is to load the data or start a device; a run that never starts is stopped after 120 s
  local cmd = "( " .. q(exe) .. " train recipes/fmnist_visreg.lua --set data.subset=4096 --set batch=32" ..
    " --set epochs=50 --set loader.workers=1 --out " .. q(run) .. " & pid=$!; i=0;" ..
    " while [ ! -s " .. q(run .. "/metrics.jsonl") .. " ] && [ $i -lt 1200 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i+1)); done;" ..
    " kill -INT $pid; wait $pid )"
  rc, out = sh(cmd)
  tap.ok(rc == 130 and out:find("interrupted at", 1, true) and util.file_exists(run .. "/checkpoint.safetensors"),
    "Ctrl-C saves a checkpoint and exits with status 130", out)
  local _, meta = vr.checkpoint.load(run .. "/checkpoint.safetensors")
  tap.ok(util.json_decode(meta.state).step >= 1, "the interrupted checkpoint records its step", meta.state)
else
  tap.skip("Ctrl-C", "needs the regularizers and Fashion-MNIST")
end

os.execute("rm -rf " .. q(base))
os.exit(tap.done(), true)
