-- finish: store the outcomes of a batch, each only if still leased under the token.
-- ARGV: token, now, then per outcome 8 values: id, status (resolved, pending, parked),
--       attempts, due (''), error JSON (''), history JSON (''), class (''), error type ('').
-- Returns 1 or 0 per outcome: whether it applied.
local token, now = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV, 8 do
  local id, status, attempts, due = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local err, history, class, etype = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local key = rec(id)
  local s, lease, q, c, t = unpack(redis.call('HMGET', key, 's', 'ls', 'q', 'c', 't'))
  if s == 'retrying' and lease == token then
    unstream(key, q)
    redis.call('HDEL', key, 'ls', 'n')
    redis.call('HSET', key, 's', status, 'a', attempts, 'u', now)
    if history ~= '' then
      redis.call('HSET', key, 'hi', history)
    end
    if err ~= '' then
      redis.call('HSET', key, 'e', err, 'c', class, 't', etype, 'l', now)
    else
      class, etype = c, t
    end
    if status == 'pending' then
      redis.call('HSET', key, 'n', due)
      redis.call('ZADD', base .. ':z:' .. q, due, one(id))
    else
      redis.call('ZREM', base .. ':waiting', one(id))
      if status == 'resolved' then
        redis.call('ZADD', base .. ':closed', now, id)
      end
    end
    count(q, 'retrying', c, t, -1)
    count(q, status, class, etype, 1)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
flush()
return out
