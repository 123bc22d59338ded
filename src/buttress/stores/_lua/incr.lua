-- incr(key, amount, ttl): INCRBY, then a ttl for a counter that has no expiry yet, atomically
-- (a client that dies between the two commands can never leave a counter that lives forever).
-- KEYS[1]  the counter
-- ARGV[1]  the amount (a signed 64-bit integer)
-- ARGV[2]  the ttl in milliseconds
-- Returns the new value as a string: a Lua number is a double, exact only up to 2^53.
redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = px(ARGV[2])
if ttl and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return redis.call('GET', KEYS[1])
