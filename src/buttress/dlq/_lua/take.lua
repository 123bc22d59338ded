-- take: lease up to limit due records of one queue.
-- ARGV: queue, now, limit, lease_until, token, consumer, lease_ms.
-- Due records move from the schedule to the stream; entries whose lease ran out are reclaimed
-- (XAUTOCLAIM after lease_ms idle: the workers of a queue should share one lease), then new
-- entries are read (XREADGROUP). Each live one becomes retrying under the token; stale
-- entries (record gone or moved on) are acknowledged and deleted.
-- Returns a list of {lost ('1' or '0'), id, flat HGETALL of the record}.
local queue, now, limit, lease_until = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local token, consumer, lease_ms = ARGV[5], ARGV[6], ARGV[7]
local stream, sched = base .. ':s:' .. queue, base .. ':z:' .. queue
redis.pcall('XGROUP', 'CREATE', stream, 'workers', '0', 'MKSTREAM')
local promoted = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', sched, '-inf', now, 'LIMIT', 0, limit)) do
  if promoted >= limit then
    break
  end
  local first, last = bounds(member)
  local score = redis.call('ZSCORE', sched, member)
  redis.call('ZREM', sched, member)
  for n = first, last do
    if promoted >= limit then
      redis.call('ZADD', sched, score, n .. '-' .. last)  -- the rest waits for the next take
      break
    end
    local id = tostring(n)
    local key = split(id)
    local s, x, due = unpack(redis.call('HMGET', key, 's', 'x', 'n'))
    -- Its own due time decides: a record rescheduled since has a member of its own.
    if s == 'pending' and not x and tonumber(due) <= tonumber(now) then
      redis.call('HSET', key, 'x', redis.call('XADD', stream, '*', 'i', id))
      promoted = promoted + 1
    end
  end
end
local entries = redis.call('XAUTOCLAIM', stream, 'workers', consumer, lease_ms, '0-0',
                           'COUNT', limit)[2]
if #entries < limit then
  local fresh = redis.call('XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT',
                           limit - #entries, 'STREAMS', stream, '>')
  if fresh then
    for _, entry in ipairs(fresh[1][2]) do
      entries[#entries + 1] = entry
    end
  end
end
local out = {}
for _, entry in ipairs(entries) do
  local eid, fields = entry[1], entry[2]
  local id = fields and fields[2]
  local key = id and rec(id)
  local status = key and redis.call('HGET', key, 's')
  local live = (status == 'pending' or status == 'retrying')
               and redis.call('HGET', key, 'x') == eid
  if live and status == 'retrying'
     and tonumber(redis.call('HGET', key, 'n')) > tonumber(now) then
    -- Reclaimed on idle time, but its holder's lease (maybe longer than ours) is not over:
    -- leave the record alone; the entry stays pending and comes back if the holder dies.
  elseif live then
    if status == 'pending' then
      local c, t = unpack(redis.call('HMGET', key, 'c', 't'))
      count(queue, 'pending', c, t, -1)
      count(queue, 'retrying', c, t, 1)
    end
    redis.call('HSET', key, 's', 'retrying', 'n', lease_until, 'ls', token, 'u', now)
    redis.call('HINCRBY', key, 'a', 1)
    out[#out + 1] = {status == 'retrying' and '1' or '0', id, redis.call('HGETALL', key)}
  else
    redis.call('XACK', stream, 'workers', eid)
    redis.call('XDEL', stream, eid)
  end
end
flush()
return out
