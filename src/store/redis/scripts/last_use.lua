-- Notes a use at ARGV[2] unless a later one is stored. KEYS: the id. ARGV: namespace,
-- at. Not published: a cache does not need it.
local prefix = redis.call('GET', KEYS[1])
if not prefix then return end
local key = ARGV[1] .. ':key:' .. prefix
if redis.call('EXISTS', key) == 0 then return end
local seen = redis.call('HGET', key, 'last_used_at')
if not seen or before(seen, ARGV[2]) then
  redis.call('HSET', key, 'last_used_at', ARGV[2])
end
