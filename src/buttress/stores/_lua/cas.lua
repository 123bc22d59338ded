-- compare_and_set(key, expected, new, ttl)
-- KEYS[1]  the key
-- ARGV[1]  '1' if a value is expected, '0' if the key must be absent
-- ARGV[2]  the expected value
-- ARGV[3]  '1' to store ARGV[4], '0' to delete the key
-- ARGV[4]  the new value
-- ARGV[5]  the new value's ttl in milliseconds, or '' for none
-- Returns 1 if the swap happened, 0 if the current value did not match.
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then
    return 0
  end
elseif current then
  return 0
end
if ARGV[3] == '0' then
  redis.call('DEL', KEYS[1])
elseif px(ARGV[5]) then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', px(ARGV[5]))
else
  redis.call('SET', KEYS[1], ARGV[4])
end
return 1
