-- array_sum.lua: push 0 .. N-1 onto an empty array (N = 5M, quick: 300k), then sum it by
-- index; prints the sum. Same work as array_sum.sasm. Run: lua5.4 array_sum.lua [quick]
local N = arg[1] == "quick" and 300000 or 5000000

local function run(n)
  local t = {}
  for i = 0, n - 1 do
    t[#t + 1] = i
  end
  local s = 0
  for j = 1, #t do
    s = s + t[j]
  end
  return s
end

print(run(N))

-- Peak RSS of this process, for the runner (benches/vs_lua.rs), on stderr.
local status = io.open("/proc/self/status")
if status then
  for line in status:lines() do
    local kb = line:match("^VmHWM:%s*(%d+)")
    if kb then io.stderr:write("peak_rss_kb=", kb, "\n") end
  end
  status:close()
end
