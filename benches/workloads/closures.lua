-- closures.lua: N = 5M (quick: 300k) iterations of: make a counter closure starting at i,
-- call it with 1 and then 2 (it returns i + 3), add that to a running sum mod 1000003;
-- prints the sum. Same work as closures.sasm. Run: lua5.4 closures.lua [quick]
local N = arg[1] == "quick" and 300000 or 5000000

local function make_counter(count)
  return function(step)
    count = count + step
    return count
  end
end

local function run(n)
  local acc = 0
  for i = 0, n - 1 do
    local counter = make_counter(i)
    counter(1)
    acc = (acc + counter(2)) % 1000003
  end
  return acc
end

print(run(N))
