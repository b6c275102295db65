-- alloc_loop.lua: the long-running loop for peak RSS: N = 10M (quick: 1M) calls of a function
-- that allocates a small object, stores i in it, reads it back and drops it; prints the sum of
-- the results mod 1000003. Same work as alloc_loop.sasm. Run: lua5.4 alloc_loop.lua [quick]
local N = arg[1] == "quick" and 1000000 or 10000000

local function alloc(i)
  local o = { v = i }
  return o.v
end

local function run(n)
  local acc = 0
  for i = 0, n - 1 do
    acc = (acc + alloc(i)) % 1000003
  end
  return acc
end

print(run(N))
