-- fib.lua: recursive Fibonacci; prints fib(35) = 9227465 (quick: fib(27) = 196418).
-- Same work as fib.sasm. Run: lua5.4 fib.lua [quick]
local N = arg[1] == "quick" and 27 or 35

local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

print(fib(N))
