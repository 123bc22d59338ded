-- A fleet-wide retry budget: add this process's deltas and read the window, in one call.
-- KEYS[1] hash of time buckets (c:<b> first attempts, r:<b> retries).
-- ARGV: 1 calls, 2 retries, 3 bucket width ms, 4 buckets in the window. Reply {calls, retries}.
local H = KEYS[1]
local calls, retries = tonumber(ARGV[1]), tonumber(ARGV[2])
local width, span = tonumber(ARGV[3]), tonumber(ARGV[4])
local b = math.floor(now_ms() / width)
if calls > 0 then redis.call('HINCRBY', H, 'c:' .. b, calls) end
if retries > 0 then redis.call('HINCRBY', H, 'r:' .. b, retries) end
if calls > 0 or retries > 0 then
  redis.call('PEXPIRE', H, width * (span + 1))
  for old = b - span - 10, b - span do
    redis.call('HDEL', H, 'c:' .. old, 'r:' .. old)
  end
end
local c, r = 0, 0
for i = b - span + 1, b do
  local v = redis.call('HMGET', H, 'c:' .. i, 'r:' .. i)
  c = c + tonumber(v[1] or '0')
  r = r + tonumber(v[2] or '0')
end
return {c, r}
