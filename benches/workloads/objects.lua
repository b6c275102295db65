-- objects.lua: N = 5M (quick: 300k) iterations of: make an object with fields x, y, z;
-- read x and y, write z = x + y, read z into a running sum mod 1000003; prints the sum.
-- Same work as objects.sasm. Run: lua5.4 objects.lua [quick]
local N = arg[1] == "quick" and 300000 or 5000000

local function run(n)
  local acc = 0
  for i = 0, n - 1 do
    local o = { x = i, y = i + 1, z = 0 }
    o.z = o.x + o.y
    acc = (acc + o.z) % 1000003
  end
  return acc
end

print(run(N))
