-- bin/visreg run tools/paper_tables.lua [--dir DIR] [--readme FILE] [--machine TEXT] [--date TEXT]
-- Prints the paper's training tables (visreg.paper_tables) from the sweeps under DIR (default
-- runs/sweeps: DIR/paper-slices/results.jsonl ..., or copies named DIR/paper-slices.jsonl);
-- --readme FILE also writes them between the paper-tables markers of FILE.
local pt = require "visreg.paper_tables"
local util = require "visreg.util"

local o = { dir = "runs/sweeps" }
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or not ({ dir = 1, readme = 1, machine = 1, date = 1 })[k] or not arg[i + 1] then
    io.stderr:write("usage: visreg run tools/paper_tables.lua [--dir DIR] [--readme FILE] [--machine TEXT] [--date TEXT]\n")
    os.exit(2)
  end
  o[k] = arg[i + 1]
  i = i + 2
end

local block = pt.render(o.dir, o)
if not block then
  io.stderr:write("paper_tables: no finished trial under " .. o.dir .. " (run the sweeps in recipes/paper/ first)\n")
  os.exit(1)
end
io.write(block)
if o.readme then
  local text = util.read_file(o.readme)
  if not text then io.stderr:write("paper_tables: cannot read " .. o.readme .. "\n"); os.exit(1) end
  local new, why = pt.splice(text, block)
  if not new then io.stderr:write("paper_tables: " .. o.readme .. ": " .. why .. "\n"); os.exit(1) end
  util.write_file(o.readme, new)
  print("updated " .. o.readme)
end
