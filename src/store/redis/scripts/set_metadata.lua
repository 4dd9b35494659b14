-- Sets the metadata entry ARGV[2] to ARGV[3], or removes it without ARGV[3]; answers
-- whether the record exists. KEYS: the id. ARGV: namespace, name, [value]. Not
-- published: a cache does not need it.
local prefix = redis.call('GET', KEYS[1])
if not prefix then return 0 end
local key = ARGV[1] .. ':key:' .. prefix
if redis.call('EXISTS', key) == 0 then return 0 end
local metadata = cjson.decode(redis.call('HGET', key, 'metadata') or '{}')
metadata[ARGV[2]] = ARGV[3]
-- cjson writes an empty table as `{}`, an object: what the reader expects.
redis.call('HSET', key, 'metadata', cjson.encode(metadata))
return 1
