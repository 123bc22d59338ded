-- manage: an operator's action on records by id.
-- ARGV: action (requeue, edit, discard, delete), now, argument (payload or reason), ids...
-- requeue: pending or parked records become due now. edit: a pending or parked record's
-- payload is replaced. discard: open records become discarded (reason kept). delete: records
-- are removed whatever their status. Returns how many records it applied to.
local action, now, arg = ARGV[1], ARGV[2], ARGV[3]
local done = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  local key = split(id)
  local s, q, c, t, f, k = unpack(redis.call('HMGET', key, 's', 'q', 'c', 't', 'f', 'k'))
  if s then
    if action == 'requeue' and (s == 'pending' or s == 'parked') then
      if not redis.call('HGET', key, 'x') then
        redis.call('ZADD', base .. ':z:' .. q, now, one(id))
      end
      redis.call('HSET', key, 's', 'pending', 'n', now, 'u', now)
      redis.call('ZADD', base .. ':waiting', f, one(id))
      count(q, s, c, t, -1)
      count(q, 'pending', c, t, 1)
      done = done + 1
    elseif action == 'edit' and (s == 'pending' or s == 'parked') then
      redis.call('HSET', key, 'p', arg, 'u', now)
      done = done + 1
    elseif action == 'discard' and is_open(s) then
      unstream(key, q)
      redis.call('ZREM', base .. ':z:' .. q, one(id))
      redis.call('ZREM', base .. ':waiting', one(id))
      redis.call('HDEL', key, 'n', 'ls')
      redis.call('HSET', key, 's', 'discarded', 'r', arg, 'u', now)
      redis.call('ZADD', base .. ':closed', now, id)
      count(q, s, c, t, -1)
      count(q, 'discarded', c, t, 1)
      done = done + 1
    elseif action == 'delete' then
      unstream(key, q)
      redis.call('ZREM', base .. ':z:' .. q, one(id))
      redis.call('ZREM', base .. ':waiting', one(id))
      redis.call('ZREM', base .. ':all', one(id))
      redis.call('ZREM', base .. ':closed', id)
      if k and redis.call('HGET', base .. ':keys', k) == id then
        redis.call('HDEL', base .. ':keys', k)
      end
      redis.call('DEL', key)
      count(q, s, c, t, -1)
      done = done + 1
    end
  end
end
flush()
return done
