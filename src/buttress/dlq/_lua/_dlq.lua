-- The dead letter queue's Lua helpers, put before each of its scripts (after the prelude).
-- KEYS[1] is the queue's base key '<prefix>{<name>}'; every other key is derived from it, so
-- all of them share one hash tag (one Redis Cluster slot):
--   :m:<id> record hash      :b:<first id> batch hash     :s:<queue> stream (group 'workers')
--   :z:<queue> schedule       :all index of ids             :waiting pending+retrying by first
--   failure   :closed ids by update   :keys idempotency keys   :counts counters hash
--   :ids id counter   :arr:<10s bucket> arrivals
-- The members of :all, :z:<queue> and :waiting are id ranges '<first>-<last>': a batch adds
-- one member to each, not one per record (ids of one batch are consecutive). A member may
-- hold ids whose records moved on or are gone: readers check each record and skip those, and
-- drop a member once none of its records is left for it. :all is scored by the first id.
-- A batch of two or more records is stored as one hash, :b:<first id>: the fields its records
-- share (below), then per record '<id>' its payload and 'k<id>' its key, and '#' how many of
-- its records it still holds. A record stays there until a script changes it: split() then
-- moves it to a hash of its own, :m:<id>, with the same fields a record added alone has (a
-- key per record made Redis spend most of an add on its keyspace). Readers look in both.
-- Record fields: q queue, p payload, k key, h headers, e error, hi history, c class, t error
-- type, f first failure, l last failure, n due time, m max attempts, a attempts, s status,
-- u updated, ls lease token, x stream entry, r note. Times are the client's wall clock.
local base = KEYS[1]
local SEP = '\31'

local function rec(id)
  return base .. ':m:' .. id
end

local function is_open(status)
  return status == 'pending' or status == 'retrying' or status == 'parked'
end

-- The first and last id of a range member.
local function bounds(member)
  local dash = string.find(member, '-', 1, true)
  return tonumber(string.sub(member, 1, dash - 1)), tonumber(string.sub(member, dash + 1))
end

-- The member of one id.
local function one(id)
  return id .. '-' .. id
end

-- The fields a batch's records share, then 'k' (stored as 'k<id>' in the batch).
local NAMES = {'q', 'e', 'c', 't', 'f', 'm', 's', 'n', 'h', 'k'}

-- The batch hash id was added in, if it was added in a batch (it may have left it since):
-- the member of :all with the greatest first id <= id. The last range found is remembered.
local seen_first, seen_last = false, false
local function batch_of(id)
  local n = tonumber(id)
  if not n then
    return false
  end
  if not (seen_first and n >= seen_first and n <= seen_last) then
    local found = redis.call('ZREVRANGEBYSCORE', base .. ':all', id, '-inf', 'LIMIT', 0, 1)
    if #found == 0 then
      return false
    end
    seen_first, seen_last = bounds(found[1])
    if n > seen_last then
      return false
    end
  end
  return base .. ':b:' .. seen_first
end

-- The batch hash still holding record id, or false.
local function holder(id)
  local b = batch_of(id)
  if b and redis.call('HEXISTS', b, id) == 1 then
    return b
  end
  return false
end

-- The fields of record id from its batch b, HGETALL's way, when b still holds it; else false.
local function unpacked(b, id)
  local payload = b and redis.call('HGET', b, id)
  if not payload then
    return false
  end
  local flat = {'p', payload}
  local v = redis.call('HMGET', b, 'q', 'e', 'c', 't', 'f', 'm', 's', 'n', 'h', 'k' .. id)
  for i = 1, #NAMES do
    if v[i] then
      flat[#flat + 1] = NAMES[i]
      flat[#flat + 1] = v[i]
    end
  end
  return flat
end

-- Record id's fields (HGETALL's flat list; empty when there is no such record).
local function fields(id)
  local flat = redis.call('HGETALL', rec(id))
  if #flat > 0 then
    return flat
  end
  return unpacked(batch_of(id), id) or flat
end

-- Fields of record id other than p and k (HMGET's list: false where absent), wherever it is.
local function some(id, ...)
  local key = rec(id)
  if redis.call('EXISTS', key) == 0 then
    key = holder(id) or key
  end
  return redis.call('HMGET', key, ...)
end

-- Move record id out of its batch into a hash of its own if it is still there; its key.
local function split(id)
  local key = rec(id)
  local b = batch_of(id)
  local flat = unpacked(b, id)
  if flat then
    redis.call('HSET', key, unpack(flat))
    redis.call('HDEL', b, id, 'k' .. id)
    if redis.call('HINCRBY', b, '#', -1) <= 0 then
      redis.call('DEL', b)
    end
  end
  return key
end

-- Counter changes are summed in the script and written once by flush(), which every script
-- that counts calls before it returns (a batch of 500 moves makes a few HINCRBY, not 4,000).
local deltas, changed = {}, {}

local function bump(field, delta)
  local sum = deltas[field]
  if sum == nil then
    changed[#changed + 1] = field
    sum = 0
  end
  deltas[field] = sum + delta
end

-- Add delta to the counters of a record in (queue, status, class, type).
local function count(q, s, c, t, delta)
  bump('s' .. SEP .. s, delta)
  bump('q' .. SEP .. q .. SEP .. s, delta)
  if is_open(s) then
    bump('c' .. SEP .. c, delta)
    bump('t' .. SEP .. t, delta)
  end
end

-- Write the summed counter changes.
local function flush()
  local counts = base .. ':counts'
  for _, field in ipairs(changed) do
    if deltas[field] ~= 0 then
      redis.call('HINCRBY', counts, field, deltas[field])
    end
  end
  deltas, changed = {}, {}
end

-- Take a record's stream entry out of the stream and the group's pending list.
local function unstream(key, q)
  local entry = redis.call('HGET', key, 'x')
  if entry then
    local stream = base .. ':s:' .. q
    redis.call('XACK', stream, 'workers', entry)
    redis.call('XDEL', stream, entry)
    redis.call('HDEL', key, 'x')
  end
end
