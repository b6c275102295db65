-- binary_trees.lua: binary-trees with max depth 20 (quick: 14): a stretch tree of depth
-- max+1, a long-lived tree of depth max, and 2^(max-d) trees of each depth d = 4, 6, ..., max
-- (the classic program makes 16 times as many: 2^(max-d+4)); nodes are arrays of two
-- children, leaves empty arrays. Prints the sum of every item check (the classic checksum).
-- Same work as binary_trees.sasm.
-- Run: lua5.4 binary_trees.lua [quick]
local MAX = arg[1] == "quick" and 14 or 20
local MIN = 4

local function bottom_up(depth)
  if depth > 0 then
    depth = depth - 1
    local left, right = bottom_up(depth), bottom_up(depth)
    return { left, right }
  else
    return {}
  end
end

local function check(tree)
  if tree[1] then
    return 1 + check(tree[1]) + check(tree[2])
  else
    return 1
  end
end

local total = check(bottom_up(MAX + 1))
local long_lived = bottom_up(MAX)
for d = MIN, MAX, 2 do
  -- 2^(MAX-d) without `<<`, which LuaJIT (Lua 5.1) lacks; an integer in Lua 5.4.
  local iterations = math.floor(2 ^ (MAX - d))
  for _ = 1, iterations do
    total = total + check(bottom_up(d))
  end
end
total = total + check(long_lived)
print(total)
