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
