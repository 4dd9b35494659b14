-- Leases a slice of a rate-limit bucket: `QuotaBucket::lease` (src/store/quota.rs),
-- step for step, on the bucket's text form; the quota conformance checks hold both to
-- one behaviour. KEYS: the bucket. ARGV: requests, period ms, holder, want, unspent,
-- lease ms. Returns {granted, remaining, retry ms, ask ms, holders}.
local n, period, holder = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local want, unspent, lease = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local per_token = period / n
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local level, at, held = math.huge, 0, {}
local text = redis.call('GET', KEYS[1])
if text then
  local words = {}
  for word in string.gmatch(text, '%S+') do words[#words + 1] = word end
  level = tonumber(words[1]) or math.huge
  at = tonumber(words[2]) or 0
  for i = 3, #words do
    local h, g, u = string.match(words[i], '^(%d+):(%d+):(%d+)$')
    if not h then return error('unreadable quota bucket') end
    held[#held + 1] = {h, tonumber(g), tonumber(u)}
  end
end

-- Time never runs backwards in a bucket; expired leases go; the holder's previous
-- lease ends, its unspent tokens (up to what it was granted) going back.
if now < at then now = at end
local kept, back, held_tokens = {}, 0, 0
for _, lease_ in ipairs(held) do
  if lease_[3] > now then
    if lease_[1] == holder then
      back = math.min(unspent, lease_[2])
    else
      kept[#kept + 1] = lease_
      held_tokens = held_tokens + lease_[2]
    end
  end
end
level = math.min(level + back + (now - at) / per_token, n - held_tokens)
at = now
local granted = math.max(math.min(math.floor(level), want), 0)
if granted > 0 then
  level = level - granted
  kept[#kept + 1] = {holder, granted, now + lease}
  held_tokens = held_tokens + granted
end

-- When the bucket has a token, and a slice (one per holder waiting).
local room = n - held_tokens
local slice = math.max(math.min(want * math.max(#kept, 1), room), 1)
local first_end, last_end = nil, 0
for _, lease_ in ipairs(kept) do
  if not first_end or lease_[3] < first_end then first_end = lease_[3] end
  if lease_[3] > last_end then last_end = lease_[3] end
end
local function until_(tokens)
  local refill = math.max(tokens - level, 0) * per_token
  if room >= 1 then return math.ceil(refill) end
  return math.ceil(math.max((first_end or now) - now + refill, 0))
end

local out = {string.format('%.17g %.0f', level, at)}
for _, lease_ in ipairs(kept) do
  out[#out + 1] = string.format('%s:%.0f:%.0f', lease_[1], lease_[2], lease_[3])
end
-- Kept until it is the same as a fresh bucket: full, and no lease running.
local idle = math.max(at + math.ceil(math.max(n - level, 0) * per_token), last_end)
redis.call('SET', KEYS[1], table.concat(out, ' '), 'PX', math.max(idle - now, 1) + 1000)
return {granted, math.floor(math.max(level, 0)), until_(1), until_(slice), #kept}
