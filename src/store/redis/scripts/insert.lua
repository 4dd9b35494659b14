-- Inserts a record if its id and prefix are free and its rule holds; writes nothing
-- otherwise. KEYS: the record, its id, its owner's list, and (replace) the old id.
-- ARGV: namespace, rule, prefix, owner, created_at, revoke_at, then field/value pairs.
local ns, rule, prefix, owner, created_at, revoke_at = unpack(ARGV, 1, 6)
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 'duplicate' end
if rule == 'one-active' then
  for _, other in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
    local r = redis.call('HMGET', ns .. ':key:' .. other, 'id', 'revoked_at', 'expires_at')
    if r[1] and not r[2] and (not r[3] or before(created_at, r[3])) then
      return 'active'
    end
  end
elseif rule == 'replace' then
  local old = redis.call('GET', KEYS[4])
  local old_key = old and (ns .. ':key:' .. old)
  if not old or redis.call('HGET', old_key, 'owner') ~= owner then return 'not-found' end
  if redis.call('HEXISTS', old_key, 'revoked_at') == 1 then return 'revoked' end
  redis.call('HSET', old_key, 'revoked_at', revoke_at)
  redis.call('PUBLISH', ns .. ':changes', old)
elseif rule ~= 'unconditional' then
  return redis.error_reply('unknown insert rule ' .. rule)
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('SET', KEYS[2], prefix)
redis.call('RPUSH', KEYS[3], prefix)
redis.call('PUBLISH', ns .. ':changes', prefix)
return 'ok'
