-- int_loop.lua: s = (s + i*i) % 1000003 for i = 0 .. N-1, N = 100M (quick: 5M); prints s.
-- Same work as int_loop.sasm. Run: lua5.4 int_loop.lua [quick]
local N = arg[1] == "quick" and 5000000 or 100000000

local function loop(n)
  local s = 0
  for i = 0, n - 1 do
    s = (s + i * i) % 1000003
  end
  return s
end

print(loop(N))

-- Peak RSS of this process, for the runner (benches/vs_lua.rs), on stderr.
local status = io.open("/proc/self/status")
if status then
  for line in status:lines() do
    local kb = line:match("^VmHWM:%s*(%d+)")
    if kb then io.stderr:write("peak_rss_kb=", kb, "\n") end
  end
  status:close()
end
