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
