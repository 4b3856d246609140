-- tap.lua: a tiny test helper. Each check prints "ok <n> - <what>" or "not ok <n> - <what>: <why>";
-- tap.done() prints a count and returns the exit status (non-zero when a check failed), so a test
-- file ends with `os.exit(tap.done(), true)` (closing the state frees every tensor, so the
-- ASan build sees no leak at exit).
local tap = { n = 0, failed = 0 }

local function report(ok, what, why)
  tap.n = tap.n + 1
  if ok then
    print(string.format("ok %d - %s", tap.n, what))
  else
    tap.failed = tap.failed + 1
    print(string.format("not ok %d - %s: %s", tap.n, what, tostring(why or "failed")))
  end
  return ok
end

function tap.ok(cond, what, why) return report(cond and true or false, what, why) end

function tap.eq(got, want, what)
  return report(got == want, what, string.format("expected %s, got %s", tostring(want), tostring(got)))
end

-- |got - want| <= tol (default 1e-6, relative to max(1, |want|))
function tap.near(got, want, tol, what)
  tol = tol or 1e-6
  local ok = type(got) == "number" and math.abs(got - want) <= tol * math.max(1, math.abs(want))
  return report(ok, what, string.format("expected %.10g (tol %g), got %s", want, tol, tostring(got)))
end

-- every element of two flat lists within tol
function tap.all_near(got, want, tol, what)
  tol = tol or 1e-6
  if #got ~= #want then return report(false, what, string.format("expected %d values, got %d", #want, #got)) end
  for i = 1, #want do
    if not (math.abs(got[i] - want[i]) <= tol * math.max(1, math.abs(want[i]))) then
      return report(false, what, string.format("at %d: expected %.10g, got %.10g", i, want[i], got[i]))
    end
  end
  return report(true, what)
end

-- fn must raise an error whose message contains each of the plain strings in patterns
function tap.raises(fn, patterns, what)
  local ok, err = pcall(fn)
  if ok then return report(false, what, "no error raised") end
  err = tostring(err)
  if type(patterns) == "string" then patterns = { patterns } end
  for _, p in ipairs(patterns or {}) do
    if not err:find(p, 1, true) then return report(false, what, string.format("message %q lacks %q", err, p)) end
  end
  return report(true, what)
end

-- runs fn as one check: ok when it returns without error (and not false)
function tap.check(what, fn)
  local ok, res, why = pcall(fn)
  if not ok then return report(false, what, res) end
  if res == false then return report(false, what, why) end
  return report(true, what)
end

function tap.skip(what, why)
  print(string.format("SKIP %s: %s", what, why))
end

-- what training tests need: the regularizers in the build and Fashion-MNIST installed. Returns
-- true, or prints a SKIP line for `what` and returns false.
function tap.can_train(what)
  local vr = require "visreg"
  if not pcall(function() return vr.C.vr_visreg end) then
    tap.skip(what, "the regularizers are not in this build")
    return false
  end
  if not vr.util.file_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
    tap.skip(what, "Fashion-MNIST is not installed (dataset-fashion-mnist)")
    return false
  end
  return true
end

-- a fresh folder under $TMPDIR (or /tmp) for a test's files, named after the test
function tap.scratch(name)
  local util = require("visreg").util
  local dir = string.format("%s/visreg_%s_%d_%d", os.getenv("TMPDIR") or "/tmp", name, os.time(), math.random(1, 1e6))
  util.mkdir_p(dir)
  return dir
end

-- runs a command line; returns the exit status and the output (stdout and stderr)
function tap.sh(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = f:read("*a")
  f:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, (out:gsub("rc=%d+%s*$", ""))
end

function tap.done()
  print(string.format("# %d checks, %d failed", tap.n, tap.failed))
  return tap.failed == 0 and 0 or 1
end

return tap
