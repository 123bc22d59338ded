-- add: store a batch of records sharing everything but payload and key.
-- ARGV: queue, error JSON, keyed ('1': each payload comes after its key or ''; '0': payloads
--       only), class, error type, now, due ('' when parked), max, status, headers JSON (''),
--       bucket (arrival bucket), n, then the n payloads (or key, payload pairs).
-- No history is stored: until the first attempt fails, it is the error of the record (read
-- side). Returns, for a keyed batch, the id of each payload (an already stored key's id for a
-- duplicate); else the last id (the ids are the n consecutive ones ending there).
local queue, err, keyed, class, etype = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4], ARGV[5]
local now, due, max, status, headers = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local bucket, n = ARGV[11], tonumber(ARGV[12])
local last = redis.call('INCRBY', base .. ':ids', n)
local keys = base .. ':keys'
local ids = {}
local added = 0

-- The fields every record of the batch shares go into a template hash once; each record is a
-- COPY of it plus its payload (and key): a third less server time than one HSET of ten fields
-- per record (most of HSET's cost is per argument). Redis before 6.2 has no COPY, and COPY
-- refuses a key that exists: then one HSET of every field per record.
local template = false
if n >= 4 then
  template = base .. ':template'
  if due ~= '' then
    redis.call('HSET', template, 'q', queue, 'e', err, 'c', class, 't', etype, 'f', now,
               'm', max, 's', status, 'n', due)
  else
    redis.call('HSET', template, 'q', queue, 'e', err, 'c', class, 't', etype, 'f', now,
               'm', max, 's', status)
  end
  if headers ~= '' then
    redis.call('HSET', template, 'h', headers)
  end
end

local function write(record, payload, key)
  if template then
    if redis.pcall('COPY', template, record) == 1 then
      if key ~= '' then
        redis.call('HSET', record, 'p', payload, 'k', key)
      else
        redis.call('HSET', record, 'p', payload)
      end
      return
    end
    redis.call('DEL', template)
    template = false
  end
  if due ~= '' then
    redis.call('HSET', record, 'q', queue, 'p', payload, 'e', err, 'c', class, 't', etype,
               'f', now, 'm', max, 's', status, 'n', due)
  else
    redis.call('HSET', record, 'q', queue, 'p', payload, 'e', err, 'c', class, 't', etype,
               'f', now, 'm', max, 's', status)
  end
  if key ~= '' then
    redis.call('HSET', record, 'k', key)
  end
  if headers ~= '' then
    redis.call('HSET', record, 'h', headers)
  end
end
local start = 1
if template and not keyed then -- the hot path, until a COPY is refused
  local prefix, first = base .. ':m:', last - n
  while start <= n do
    local record = prefix .. (first + start)
    if redis.pcall('COPY', template, record) ~= 1 then
      break
    end
    redis.call('HSET', record, 'p', ARGV[12 + start])
    start = start + 1
  end
  added = start - 1
end
for i = start, n do
  local key, payload = '', ARGV[12 + i]
  if keyed then
    key, payload = ARGV[11 + 2 * i], ARGV[12 + 2 * i]
  end
  local id = false
  if key ~= '' then
    id = redis.call('HGET', keys, key)
  end
  if id then
    ids[i] = id
  else
    id = tostring(last - n + i)
    ids[i] = id
    write(base .. ':m:' .. id, payload, key)
    if key ~= '' then
      redis.call('HSET', keys, key, id)
    end
    added = added + 1
  end
end
if template then
  redis.call('DEL', template)
end
if added > 0 then
  local range = tostring(last - n + 1) .. '-' .. tostring(last)
  redis.call('ZADD', base .. ':all', last - n + 1, range)
  if due ~= '' then
    redis.call('ZADD', base .. ':z:' .. queue, due, range)
    redis.call('ZADD', base .. ':waiting', now, range)
  end
  count(queue, status, class, etype, added)
  local arrivals = base .. ':arr:' .. bucket
  redis.call('INCRBY', arrivals, added)
  redis.call('EXPIRE', arrivals, 90000)
end
if keyed then
  return ids
end
return last
