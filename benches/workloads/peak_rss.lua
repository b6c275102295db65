-- peak_rss.lua: runs a workload script, then reports this process's peak RSS on stderr for
-- the runner (benches/vs_lua.rs). Usage: lua5.4 peak_rss.lua NAME.lua [quick]
-- (or luajit -joff peak_rss.lua NAME.lua [quick]: Lua 5.1 has `unpack`, not `table.unpack`).
local script = arg[1]
local unpack = table.unpack or unpack
arg = { [0] = script, unpack(arg, 2) }
dofile(script)

local status = io.open("/proc/self/status")
if status then
  for line in status:lines() do
    local kb = line:match("^VmHWM:%s*(%d+)")
    if kb then io.stderr:write("peak_rss_kb=", kb, "\n") end
  end
  status:close()
end
