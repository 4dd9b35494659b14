-- The owner's records, as one consistent read, in insertion order. KEYS: the owner's
-- list. ARGV: namespace.
local records = {}
for _, prefix in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HGETALL', ARGV[1] .. ':key:' .. prefix)
  if #fields > 0 then records[#records + 1] = fields end
end
return records
