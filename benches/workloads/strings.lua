-- strings.lua: N = 1M (quick: 60k) times, build a 50-character string from "" by 20
-- concatenations ("ab" then "cde", ten times) and compare it with the expected text; prints
-- how many matched (N). Same work as strings.sasm. Run: lua5.4 strings.lua [quick]
local N = arg[1] == "quick" and 60000 or 1000000
local EXPECTED = string.rep("abcde", 10)

local function run(n)
  local matches = 0
  for _ = 1, n do
    local s = ""
    for _ = 1, 10 do
      s = s .. "ab"
      s = s .. "cde"
    end
    if s == EXPECTED then matches = matches + 1 end
  end
  return matches
end

print(run(N))
