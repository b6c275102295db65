-- fib.lua: recursive Fibonacci; prints fib(35) = 9227465 (quick: fib(27) = 196418).
-- Same work as fib.sasm. Run: lua5.4 fib.lua [quick]
local N = arg[1] == "quick" and 27 or 35

local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

print(fib(N))

-- Peak RSS of this process, for the runner (benches/vs_lua.rs), on stderr.
local status = io.open("/proc/self/status")
if status then
  for line in status:lines() do
    local kb = line:match("^VmHWM:%s*(%d+)")
    if kb then io.stderr:write("peak_rss_kb=", kb, "\n") end
  end
  status:close()
end
