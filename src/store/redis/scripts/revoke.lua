-- Revokes as of ARGV[2], keeping an earlier revocation; returns the record's fields,
-- or nil when there is none. KEYS: the id. ARGV: namespace, at.
local prefix = redis.call('GET', KEYS[1])
if not prefix then return false end
local key = ARGV[1] .. ':key:' .. prefix
if redis.call('EXISTS', key) == 0 then return false end
local revoked_at = redis.call('HGET', key, 'revoked_at')
if not revoked_at or before(ARGV[2], revoked_at) then
  redis.call('HSET', key, 'revoked_at', ARGV[2])
  redis.call('PUBLISH', ARGV[1] .. ':changes', prefix)
end
return redis.call('HGETALL', key)
