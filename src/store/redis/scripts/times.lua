-- Compares times exactly in Lua, whose numbers are doubles (exact only to 2^53, while
-- nanosecond times reach 1.8e18). A time, decimal text of an i64, is read as two
-- exact doubles `n = hi * 1e9 + lo`, both with n's sign (|hi| < 2^34, |lo| < 1e9);
-- comparing the pairs in order compares the times: if hi_a < hi_b, then
-- a < (hi_a + 1) * 1e9 <= b when b >= 0, and a <= hi_a * 1e9 <= (hi_b - 1) * 1e9 < b
-- when b < 0 (then hi_a < 0 and lo_a <= 0).
local function parts(s)
  local sign, digits = 1, s
  if s:sub(1, 1) == '-' then sign, digits = -1, s:sub(2) end
  if #digits > 19 or not digits:match('^%d+$') then
    return error('stored key record has an unreadable time')
  end
  local n = #digits
  local hi = n > 9 and tonumber(digits:sub(1, n - 9)) or 0
  return sign * hi, sign * tonumber(digits:sub(math.max(n - 8, 1)))
end
local function before(a, b)
  local a_hi, a_lo = parts(a)
  local b_hi, b_lo = parts(b)
  return a_hi < b_hi or (a_hi == b_hi and a_lo < b_lo)
end
