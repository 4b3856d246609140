-- `visreg repl`: completion candidates, the printing of results, the doc registry and help, the
-- "did you mean" errors and the interrupt request (in this process); --help, -e, -i and piped input
-- (as commands); a run folder's globals (when training can run); and the interactive REPL driven
-- through a pseudo-terminal with tmux (skipped when tmux is absent): Tab, ?NAME, a multi-line
-- statement, Ctrl-C during a computation and at the prompt, _, a trailing ;, the history file.
local tap = require "tap"
local vr = require "visreg"
local repl = require "visreg.repl"
local doc = require "visreg.doc"
local core = require "visreg.core"
local util = vr.util
local C = vr.C

local exe = VISREG_EXE
local sh, q = tap.sh, util.shell_quote
local base = tap.scratch("repl")
rawset(_G, "vr", vr) -- as the REPL has it

local function has(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end
local function all_start(list, prefix)
  for _, v in ipairs(list) do if v:sub(1, #prefix) ~= prefix then return false end end
  return #list > 0
end

---------------------------------------------------------------- completion
local c = repl.complete("vr.nn.ml")
tap.ok(has(c, "vr.nn.mlp") and #c == 1, "vr.nn.ml completes to vr.nn.mlp", table.concat(c, " "))
c = repl.complete("vr.")
tap.ok(has(c, "vr.zeros") and has(c, "vr.nn") and has(c, "vr.probe") and all_start(c, "vr."),
  "vr. offers its functions and its submodules, loaded or not", table.concat(c, " "))
tap.ok(not has(c, "vr._G") and not has(repl.complete("vr.n"), "vr.__fields"), "names starting with _ are hidden")
c = repl.complete("local y = pri")
tap.ok(has(c, "print") and not has(c, "pairs"), "a global after other text", table.concat(c, " "))
tap.ok(has(repl.complete("fun"), "function"), "keywords complete")
rawset(_G, "xt", vr.ones { 2, 3 })
c = repl.complete("xt:")
tap.ok(has(c, "xt:sum") and has(c, "xt:size") and has(c, "xt:matmul") and all_start(c, "xt:"),
  "xt:<TAB> offers the tensor methods", #c)
tap.ok(has(repl.complete("xt:su"), "xt:sum") and not has(repl.complete("xt:su"), "xt:size"), "a method prefix narrows")
rawset(_G, "lin", vr.nn.Linear(3, 2))
c = repl.complete("lin:")
tap.ok(has(c, "lin:forward") and has(c, "lin:parameters") and has(c, "lin:eval") and not has(c, "lin:weight"),
  "methods of a module instance come through its classes; fields are not methods", table.concat(c, " "))
c = repl.complete("lin.")
tap.ok(has(c, "lin.weight") and has(c, "lin.bias") and has(c, "lin.forward"), "fields and methods after a dot")
rawset(_G, "sx", "abc")
tap.ok(has(repl.complete("sx:up"), "sx:upper"), "string methods")
tap.eq(#repl.complete('print("vr.'), 0, "nothing inside a string")
tap.eq(#repl.complete("nosuchthing."), 0, "nothing after an unknown name")
tap.eq(#repl.complete("1.5"), 0, "nothing in a number")
rawset(_G, "xt", nil)
rawset(_G, "lin", nil)
rawset(_G, "sx", nil)

---------------------------------------------------------------- printing
local f = repl.format
tap.eq(f({ 1, 2, 3 }), "{1, 2, 3}", "an array prints inline")
tap.eq(f({ b = 2, a = 1, [1] = "x" }), '{"x", a = 1, b = 2}', "array part first, then keys sorted; nested strings quoted")
tap.eq(f({ a = { b = { c = { d = 1 } } } }), "{a = {b = {c = {...1}}}}", "nesting is cut at depth 3")
local big = {}
for i = 1, 30 do big[i] = i end
tap.ok(f(big):find("...(10 more)", 1, true) ~= nil, "long tables are cut with a count", f(big))
local cyc = { name = "c" }
cyc.self = cyc
tap.eq(f(cyc), '{name = "c", self = <cycle>}', "cycles print as <cycle>")
tap.eq(f({ ["a b"] = 1, [true] = 2 }), '{[true] = 2, ["a b"] = 1}', "keys that are not names are bracketed")
tap.eq(f({ t = vr.zeros { 2, 3 } }), "{t = tensor(f32 [2, 3])}", "a tensor inside a table prints its summary")
tap.eq(f(vr.zeros { 2 }), tostring(vr.zeros { 2 }), "a tensor prints as print() shows it")
tap.eq(f(2 ^ 40), "1099511627776", "integral numbers print whole")
tap.eq(f(0.1), "0.1", "other numbers")
tap.ok(f(vr.zeros):find("vr.zeros(shape", 1, true) ~= nil, "a documented function prints its signature", f(vr.zeros))
local wide = {}
for i = 1, 12 do wide["key" .. i] = string.rep("v", 10) end
tap.ok(f(wide):find("\n  key1 = ", 1, true) ~= nil, "a table too wide for a line prints one entry a line", f(wide))

---------------------------------------------------------------- evaluation (results captured)
local captured = {}
local real_write = io.write
local function run(src, final)
  captured = {}
  io.write = function(...)
    for i = 1, select("#", ...) do captured[#captured + 1] = tostring(select(i, ...)) end
  end
  local ok, res = pcall(repl.eval, src, "=repl", final)
  io.write = real_write
  return ok, res, table.concat(captured)
end
repl.start()
local ok, res, text = run("40 + 2")
tap.ok(ok and text == "42\n" and rawget(_G, "_") == 42, "an expression prints its value and sets _", text)
ok, res, text = run("_ + 1")
tap.ok(ok and text == "43\n", "_ holds the last result", text)
ok, res, text = run("100 + 1;")
tap.ok(ok and text == "" and rawget(_G, "_") == 101, "a trailing ; prints nothing (and _ is still set)", text)
ok, res, text = run("zz = 5")
tap.ok(ok and text == "" and rawget(_G, "zz") == 5, "a statement prints nothing", text)
ok, res, text = run("(function() end)()")
tap.ok(ok and text == "", "a call that returns nothing prints nothing")
ok, res, text = run("1, nil, 'two'")
tap.ok(ok and text == "1\tnil\ttwo\n", "several values print tab-separated", text)
ok, res = run("function g(a)")
tap.ok(ok and res == "incomplete", "an unfinished statement asks for more", res)
ok, res = run("function g(a)", true)
tap.ok(not ok and tostring(res):find("'end' expected", 1, true), "...and is an error when no more can come", res)
ok, res = run("error('boom')")
tap.ok(not ok and res == "repl:1: boom", "an error in an expression names the prompt's line", res)
ok, res = run("zx")
tap.ok(not ok and tostring(res):find("unknown global 'zx'; did you mean 'zz'?", 1, true),
  "reading an unknown global at the prompt names the nearest ones", res)
tap.eq(rawget(_G, "zx"), nil, "library code still reads unknown globals as nil")
ok, res = run("vr.zeros{2}:sizee()")
tap.ok(not ok and tostring(res):find("tensor has no method 'sizee'; did you mean 'size'?", 1, true),
  "an unknown tensor method names the nearest", res)
ok, res, text = run("?vr.zeros")
tap.ok(ok and text:find("vr.zeros(shape", 1, true) and text:find("A tensor of zeros", 1, true), "?NAME shows a doc", text)
ok, res, text = run("  ? vr.nn.mlp ")
tap.ok(ok and text:find("Linear layers with norm", 1, true), "?NAME with spaces", text)
rawset(_G, "xt", vr.ones { 3 })
ok, res, text = run("?xt:sum")
tap.ok(ok and text:find("x:sum(", 1, true) and text:find("The sum over dims", 1, true), "?x:method shows the method's doc", text)
ok, res, text = run("?xt")
tap.ok(ok and text:find("tensor(f32 [3])", 1, true) and text:find("matmul", 1, true), "?x of a tensor lists its methods", text)
ok, res = run("?xt:summ")
tap.ok(not ok and tostring(res):find("did you mean 'sum'", 1, true), "?x:unknown names the nearest methods", res)
ok, res, text = run("help()")
tap.ok(ok and text:find("loaded:", 1, true) and text:find("vr.nn", 1, true) and text:find("vr.probe", 1, true)
  and text:find("tensor methods", 1, true) and text:find("zeros", 1, true), "help() lists what is loaded and the words", text)
ok, res, text = run("help(vr.nn)")
tap.ok(ok and text:find("Neural-network modules", 1, true) and text:find("resnet18", 1, true), "help(module) lists its words", text)
ok, res, text = run("help(zz)")
tap.ok(ok and text:find("5", 1, true), "help of a plain value prints it", text)
ok, res = run("for i = 1, 10 do")
tap.ok(ok and res == "incomplete", "an open loop asks for more")
rawset(_G, "xt", nil)

---------------------------------------------------------------- the doc registry
local thing = function() end
doc.add(thing, "thing(a, b)", "Does a thing.\nSecond line.", { group = "testwords" })
local e = doc.get(thing)
tap.ok(e and e.name == "thing" and e.sig == "thing(a, b)" and e.group == "testwords", "doc.add then doc.get by object")
local groups, map = doc.groups()
tap.ok(has(groups, "testwords") and map.testwords[1].name == "thing", "doc.groups lists a new group")
tap.ok(doc.get(vr.probe.knn) and doc.get(vr.probe.knn).path == "vr.probe.knn", "path docs resolve once the module is loaded")
tap.ok(doc.lookup("tensor:sum") and doc.get(require("visreg.tensor").methods.sum) == doc.lookup("tensor:sum"),
  "tensor method docs by path and by object")
local n = 0
for _, w in ipairs(doc.words()) do if w.group == "vr" then n = n + 1 end end
tap.ok(n >= 20, "the toolkit's own words are seeded", n)

---------------------------------------------------------------- the interrupt request
tap.eq(util.did_you_mean("enx", { "enc", "proj", "ds" }), "did you mean 'enc'?", "did_you_mean: one")
tap.eq(util.did_you_mean("qqqqq", { "enc", "proj" }), nil, "did_you_mean: none near")
local xtr = vr.randn { 64, 4 }
local labels = {}
for i = 1, 64 do labels[i] = i % 2 end
local ytr = vr.tensor(labels, { dtype = "i64" })
local ok2, err2 = pcall(function()
  C.vr_interrupt_request()
  return vr.probe.knn(xtr, ytr, xtr, ytr, { k = 3 })
end)
tap.ok(not ok2 and core.is_interrupt(err2) and C.vr_interrupt_pending() == 0,
  "a pending request stops the kNN probe with an interrupted error and is taken", err2)
C.vr_interrupt_request()
tap.raises(function() vr.check_interrupt() end, "interrupted", "vr.check_interrupt raises at a pending request")
tap.eq(C.vr_interrupt_pending(), 0, "...and takes it")
tap.ok(pcall(vr.check_interrupt), "vr.check_interrupt is quiet otherwise")
tap.ok(C.vr_host_interrupted() == 0 and (function() C.vr_interrupt_request(); return C.vr_host_interrupted() == 1 end)(),
  "the host's vr_host_interrupted reads the core's request")
C.vr_host_clear_interrupt()
tap.eq(C.vr_interrupt_pending(), 0, "vr_host_clear_interrupt clears it")

---------------------------------------------------------------- the command
local r = q(exe) .. " repl"
local rc, out = sh(r .. " --help")
tap.ok(rc == 0 and out:find("usage: visreg repl [RUN_DIR] [-e CODE]", 1, true), "--help prints the usage", out)
rc, out = sh(r .. " -h")
tap.ok(rc == 0 and out:find("-i SCRIPT", 1, true), "-h too", out)
rc, out = sh(r .. " --bogus")
tap.ok(rc == 2 and out:find("unknown option --bogus", 1, true), "an unknown option is refused", out)
rc, out = sh(r .. " -e")
tap.ok(rc == 2 and out:find("-e needs a value", 1, true), "-e needs a value", out)
rc, out = sh(r .. " -e 'x = 20' -e 'x + 1' -e 'vr.zeros{2}' -e '{a = 1}' -e 'print(\"hi\")' -e 'x;'")
tap.ok(rc == 0 and out == "21\ntensor([0., 0.])\n{a = 1}\nhi\n", "-e runs code in order and prints like the prompt", out)
rc, out = sh(r .. " -e 'error(\"bad\")' -e 'print(\"after\")'")
tap.ok(rc == 1 and out:find("(command line):1: bad", 1, true) and not out:find("after", 1, true),
  "-e: an error exits with status 1", out)
rc, out = sh(r .. " -e 'enx = 1' -e 'enz'")
tap.ok(rc == 1 and out:find("unknown global 'enz'; did you mean 'enx'?", 1, true), "-e: did you mean", out)
rc, out = sh(r .. " -e 'function f('")
tap.ok(rc == 1 and out:find("expected", 1, true), "-e: an unfinished statement is an error", out)
rc, out = sh("printf 'x = 5\\nx + 1\\nfunction f(a)\\n  return a * 2\\nend\\nf(21)\\n?vr.ones\\n_;\\n' | " .. r)
tap.ok(rc == 0 and out:find("^6\n42\nvr.ones%(shape") and not out:find("> ", 1, true) and not out:find("visreg repl", 1, true),
  "piped input: results printed, no banner, no prompts", out)
rc, out = sh("printf 'x = 5\\nx + 1\\nnosuch.field\\nprint(\"after\")\\n' | " .. r)
tap.ok(rc == 1 and out:find("6\n", 1, true) and out:find("unknown global 'nosuch'", 1, true) and not out:find("after", 1, true),
  "piped input: the first error exits with status 1", out)
rc, out = sh("printf 'function f(a)\\n' | " .. r)
tap.ok(rc == 1 and out:find("'end' expected", 1, true), "piped input that ends inside a statement is an error", out)
local script = base .. "/s.lua"
util.write_file(script, "y = 41\nlocal function helper() return 1 end\nz = helper()\n")
rc, out = sh("printf 'y + z\\n' | " .. r .. " -i " .. q(script))
tap.ok(rc == 0 and out == "42\n", "-i runs a script, then reads the input", out)
util.write_file(script, "error('in script')\n")
rc, out = sh("printf 'print(1)\\n' | " .. r .. " -i " .. q(script))
tap.ok(rc == 1 and out:find("in script", 1, true), "-i: a failing script with piped input exits 1", out)

---------------------------------------------------------------- a run folder
if tap.can_train("repl RUN_DIR") then
  local recipe = base .. "/tiny.lua"
  util.write_file(recipe, [[
local vr = require "visreg"
local nn, aug = vr.nn, vr.augment
return vr.recipe {
  seed = 1, epochs = 1, batch = 64, device = "cpu",
  data = vr.data.fashion_mnist { subset = 256, test_subset = 200 },
  views = { global = { n = 2, pipeline = { aug.normalize { mean = 0.286, std = 0.353 } } } },
  model = function()
    local enc = nn.smallcnn { width = 4 }
    return enc, nn.mlp { enc.out_dim, 16, 8 }
  end,
  loss = vr.loss.visreg { slices = 16 },
  optim = vr.optim.adamw { lr = 1e-3 },
  eval = { linear_probe = false, knn = false },
  loader = { workers = 1 },
}
]])
  local run_dir = base .. "/run"
  rc, out = sh(q(exe) .. " train " .. q(recipe) .. " --quiet --out " .. q(run_dir))
  if rc ~= 0 then
    tap.ok(false, "a tiny run for the REPL trains", out)
  else
    rc, out = sh(r .. " " .. q(run_dir) .. " -e 'enc.out_dim' -e 'ds.test:count()'")
    tap.ok(rc == 0 and out == "16\n200\n", "RUN_DIR -e: the run's globals, no banner", out)
    rc, out = sh(r .. " " .. q(run_dir) .. " -e '?enc' -e 'help()'")
    tap.ok(rc == 0 and out:find("The run's encoder", 1, true) and out:find("loaded:", 1, true) and out:find("trainer", 1, true),
      "the run's globals are documented and listed", out)
    rc, out = sh("printf 'f = vr.probe.features(enc, ds.test)\\nf:shape()\\n' | " .. r .. " " .. q(run_dir))
    tap.ok(rc == 0 and out == "{200, 16}\n", "piped input with a run folder", out)
  end
end

---------------------------------------------------------------- interactive, through tmux
local function tmux_ok()
  local h = io.popen("command -v tmux 2>/dev/null")
  local p = h:read("*a")
  h:close()
  return p ~= ""
end

if not tmux_ok() then
  tap.skip("interactive REPL", "tmux is not installed (make test-deps installs it)")
else
  -- a tmux server of its own (not the user's), its socket in the scratch folder
  local tm = "tmux -S " .. q(base .. "/tmux.sock") .. " "
  local function interactive()
    local hist = base .. "/history"
    -- an old history of 1005 entries: the file keeps the last 1000
    local old = {}
    for i = 1, 1005 do old[#old + 1] = "#1700000000\nold_entry_" .. i end
    util.write_file(hist, table.concat(old, "\n") .. "\n")
    local session = "repl"
    local function capture()
      local h = io.popen(tm .. "capture-pane -p -S -1000 -t " .. session .. " 2>/dev/null")
      local s = h:read("*a")
      h:close()
      return s
    end
    local function alive()
      return os.execute(tm .. "has-session -t " .. session .. " 2>/dev/null") == 0
    end
    -- polls the screen until pred(text) holds or limit (30) seconds pass; returns whether it held
    -- and the last screen
    local function wait(pred, limit)
      local t0 = vr.now()
      local s = ""
      repeat
        s = capture()
        if pred(s) then return true, s end
        os.execute("sleep 0.05")
      until vr.now() - t0 > (limit or 30)
      return false, s
    end
    local function plain(p) return function(s) return s:find(p, 1, true) ~= nil end end
    local function count(s, p)
      local k, i = 0, 1
      while true do
        local a, b = s:find(p, i, true)
        if not a then return k end
        k, i = k + 1, b + 1
      end
    end
    -- the screen's last non-empty line
    local function last_line(s)
      local last = ""
      for line in s:gmatch("[^\n]*") do
        if line:match("%S") then last = line:gsub("%s+$", "") end
      end
      return last
    end
    local function send(text) os.execute(tm .. "send-keys -t " .. session .. " -l " .. q(text)) end
    local function key(k) os.execute(tm .. "send-keys -t " .. session .. " " .. k) end
    local function line(text)
      send(text)
      key("Enter")
    end

    local started = os.execute(tm .. "new-session -d -s " .. session .. " -x 200 -y 50 " ..
      q("VISREG_HISTORY=" .. q(hist) .. " " .. q(exe) .. " repl"))
    local okw, s = wait(function(x) return x:find("visreg repl:", 1, true) and last_line(x) == ">" end)
    tap.ok(started == 0 and okw, "the REPL starts in a terminal with a banner and a prompt", s)

    send("vr.nn.ml")
    key("Tab")
    okw, s = wait(function(x) return last_line(x) == "> vr.nn.mlp" end)
    tap.ok(okw, "Tab completes vr.nn.ml to vr.nn.mlp", s)
    key("C-u")

    line("?vr.zeros")
    okw, s = wait(plain("A tensor of zeros"))
    tap.ok(okw, "?vr.zeros shows the doc", s)

    line("function f(x)")
    okw = wait(function(x) return last_line(x) == ">>" end)
    line("return x*2")
    line("end")
    line("f(21)")
    okw, s = wait(function(x) return x:find("\n42\n", 1, true) ~= nil end)
    tap.ok(okw and s:find(">> end", 1, true), "a statement over several lines, then a call", s)

    line("x = 5")
    line("for i=1,1e12 do end")
    wait(plain("> for i=1,1e12 do end"))
    for _ = 1, 10 do -- (a loaded machine may be slow to start the loop)
      key("C-c")
      okw, s = wait(plain("interrupted"), 2)
      if okw then break end
    end
    tap.ok(okw, "Ctrl-C stops a long loop", s)
    line("x + 1")
    okw, s = wait(function(x) return x:find("\n6\n", 1, true) ~= nil end)
    tap.ok(okw, "...and the session's globals are intact", s)

    line("function g(")
    wait(function(x) return last_line(x) == ">>" end)
    key("C-c")
    okw = wait(function(x) return last_line(x) == ">" end)
    line("1 + 100")
    okw, s = wait(function(x) return x:find("\n101\n", 1, true) ~= nil end)
    tap.ok(okw and not s:find("near '1'", 1, true), "Ctrl-C at the prompt drops the unfinished statement", s)

    line("7 * 11")
    wait(function(x) return x:find("\n77\n", 1, true) ~= nil end)
    line("_ + 1")
    okw, s = wait(function(x) return x:find("\n78\n", 1, true) ~= nil end)
    tap.ok(okw, "_ is the last result", s)

    line("12345 + 1; ") -- (tmux reads an argument ending in ; as a command separator)
    line("999 + 1")
    okw, s = wait(function(x) return x:find("\n1000\n", 1, true) ~= nil end)
    tap.ok(okw and not s:find("12346", 1, true), "a trailing ; prints nothing", s)

    line("enc = 1")
    line("enx")
    okw, s = wait(plain("unknown global 'enx'; did you mean 'enc'?"))
    tap.ok(okw, "an unknown global: did you mean", s)
    line("vr.zeros{2}:sizee()")
    okw, s = wait(plain("did you mean 'size'?"))
    tap.ok(okw, "an unknown tensor method: did you mean", s)
    line("error('still here')")
    wait(plain("still here"))
    line("x * 10")
    okw, s = wait(function(x) return x:find("\n50\n", 1, true) ~= nil end)
    tap.ok(okw, "errors never end the session", s)

    key("C-d")
    local t0 = vr.now()
    while alive() and vr.now() - t0 < 30 do os.execute("sleep 0.05") end
    tap.ok(not alive(), "Ctrl-D leaves")
    local h = util.read_file(hist) or ""
    tap.ok(h:find("\nx = 5\n", 1, true) and h:find("function f(x)\nreturn x*2\nend\n", 1, true)
      and h:find("\nerror('still here')\n", 1, true) and not h:find("function g(", 1, true),
      "the history file holds the session's statements (multi-line ones whole), not the dropped one", h)
    local entries = select(2, h:gsub("#%d+\n", ""))
    tap.ok(entries == 1000 and not h:find("old_entry_1\n", 1, true) and h:find("old_entry_1005\n", 1, true),
      "the history keeps the last 1000 entries", entries)

    -- a new session recalls the history
    os.execute(tm .. "new-session -d -s " .. session .. " -x 200 -y 50 " ..
      q("VISREG_HISTORY=" .. q(hist) .. " " .. q(exe) .. " repl"))
    wait(function(x) return last_line(x) == ">" end)
    key("Up")
    okw, s = wait(function(x) return last_line(x) == "> x * 10" end)
    tap.ok(okw, "the next session recalls the history with Up", s)
    key("C-u")
    key("C-d")
  end
  local okr, err = pcall(interactive)
  if not okr then tap.ok(false, "the interactive checks ran to the end", err) end
  os.execute(tm .. "kill-server 2>/dev/null")
end

os.execute("rm -rf " .. q(base))
os.exit(tap.done(), true)
