-- add: store a batch of records sharing everything but payload and key.
-- ARGV: queue, error JSON, keyed ('1': each payload comes after its key or ''; '0': payloads
--       only), class, error type, now, due ('' when parked), max, status, headers JSON (''),
--       bucket (arrival bucket), n, then the n payloads (or key, payload pairs).
-- No history is stored: until the first attempt fails, it is the error of the record (read
-- side). A single record gets its own hash; two or more go into one batch hash (see _dlq.lua).
-- Returns, for a keyed batch, the id of each payload (an already stored key's id for a
-- duplicate); else the last id (the ids are the n consecutive ones ending there).
local queue, err, keyed, class, etype = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4], ARGV[5]
local now, due, max, status, headers = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local bucket, n = ARGV[11], tonumber(ARGV[12])
local last = redis.call('INCRBY', base .. ':ids', n)
local first = last - n + 1
local keys = base .. ':keys'
local ids = {}
local added = 0

-- The shared fields, then each record's: in a record's own hash as they are, in the batch
-- hash as '<id>' (payload) and 'k<id>' (key).
local out = {'q', queue, 'e', err, 'c', class, 't', etype, 'f', now, 'm', max, 's', status}
if due ~= '' then
  out[#out + 1] = 'n'
  out[#out + 1] = due
end
if headers ~= '' then
  out[#out + 1] = 'h'
  out[#out + 1] = headers
end
local alone = n == 1
for i = 1, n do
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
    id = tostring(first + i - 1)
    ids[i] = id
    out[#out + 1] = alone and 'p' or id
    out[#out + 1] = payload
    if key ~= '' then
      out[#out + 1] = alone and 'k' or 'k' .. id
      out[#out + 1] = key
      redis.call('HSET', keys, key, id)
    end
    added = added + 1
  end
end
if added > 0 then
  if alone then
    redis.call('HSET', rec(ids[1]), unpack(out))
  else
    out[#out + 1] = '#'
    out[#out + 1] = added
    redis.call('HSET', base .. ':b:' .. first, unpack(out))
  end
  local range = tostring(first) .. '-' .. tostring(last)
  redis.call('ZADD', base .. ':all', first, range)
  if due ~= '' then
    redis.call('ZADD', base .. ':z:' .. queue, due, range)
    redis.call('ZADD', base .. ':waiting', now, range)
  end
  count(queue, status, class, etype, added)
  local arrivals = base .. ':arr:' .. bucket
  redis.call('INCRBY', arrivals, added)
  redis.call('EXPIRE', arrivals, 90000)
end
flush()
if keyed then
  return ids
end
return last
