-- a sweep submitted to a real Slurm: tests/slurm/local-slurm starts munged, slurmctld and slurmd
-- on this machine, `visreg sweep --slurm` submits a 4-task job array, the tasks run their trials
-- in the shared sweep folder, and `visreg sweep status` collects them; the daemons are stopped at
-- the end. Skipped where Slurm is not installed or the test is not run as root.
local tap = require "tap"
local vr = require "visreg"
local util = vr.util
local q = util.shell_quote
local exe = VISREG_EXE

local sh = tap.sh
if not tap.can_train("slurm sweep") then os.exit(tap.done(), true) end
if sh("tests/slurm/local-slurm available") ~= 0 or sh("test \"$(id -u)\" = 0") ~= 0 then
  tap.skip("slurm sweep", "needs root and Debian's slurmctld, slurmd, slurm-client and munge")
  os.exit(tap.done(), true)
end

-- the munge socket's path must stay short: a folder of its own under /tmp
local _, tmp = sh("mktemp -d /tmp/vrslurm.XXXXXX")
tmp = tmp:gsub("%s+$", "")
local slurm_dir, base = tmp .. "/s", tmp .. "/w"
util.mkdir_p(base)
local rc, out = sh("tests/slurm/local-slurm start " .. q(slurm_dir))
if not tap.ok(rc == 0, "a single-node Slurm starts", out) then os.exit(tap.done(), true) end
local env = "SLURM_CONF=" .. q(slurm_dir .. "/slurm.conf") .. " PATH=/usr/sbin:$PATH "

local recipe = os.getenv("PWD") .. "/recipes/fmnist_visreg.lua"
local file = base .. "/four.yaml"
util.write_file(file, "recipe: " .. recipe .. "\nname: four\n" ..
  "set: { epochs: 1, batch: 64, data.subset: 512, data.test_subset: 500, eval.probe_iters: 50 }\n" ..
  "grid: { loss.lambda: [0.5, 0.8], model.width: [8, 16] }\nparallel: 2\nslurm: { cpus: 1, time: '0:10:00' }\n")
local dir = base .. "/sweep"
rc, out = sh(env .. q(exe) .. " sweep " .. q(file) .. " --out " .. q(dir) .. " --slurm")
local job = out:match("submitted job (%d+)")
tap.ok(rc == 0 and job, "--slurm submits the job array", out)

-- wait (at most 3 minutes) for the array to leave the queue
local t0 = vr.now()
while job and vr.now() - t0 < 180 do
  local _, q_out = sh(env .. "squeue -h -j " .. job)
  if q_out:gsub("%s", "") == "" then break end
  os.execute("sleep 1")
end
rc, out = sh(q(exe) .. " sweep status " .. q(dir))
tap.ok(rc == 0 and out:find("4/4 done", 1, true), "sweep status collects the 4 array tasks' results", out)
local _, nlogs = sh("ls " .. q(dir .. "/slurm") .. " | grep -c log")
tap.eq(tonumber(nlogs), 4, "each array task wrote its log in the sweep folder")
rc, out = sh(env .. q(exe) .. " sweep " .. q(file) .. " --out " .. q(dir) .. " --slurm")
tap.ok(rc == 0 and out:find("nothing to submit", 1, true), "a finished sweep submits nothing", out)

rc, out = sh("tests/slurm/local-slurm stop " .. q(slurm_dir))
tap.ok(rc == 0, "the daemons stop", out)
local _, left = sh("ps -eo args | grep -F " .. q(slurm_dir) .. " | grep -v grep || true") -- not this command itself
tap.eq(left:gsub("%s", ""), "", "nothing is left running")
os.execute("rm -rf " .. q(tmp))
os.exit(tap.done(), true)
