-- The dead letter queue's Lua helpers, put before each of its scripts (after the prelude).
-- KEYS[1] is the queue's base key '<prefix>{<name>}'; every other key is derived from it, so
-- all of them share one hash tag (one Redis Cluster slot):
--   :m:<id> record hash      :s:<queue> stream (group 'workers')    :z:<queue> schedule
--   :all index of ids         :waiting pending+retrying by first failure   :closed ids by update
--   :keys idempotency keys   :counts counters hash   :ids id counter   :arr:<10s bucket> arrivals
-- The members of :all, :z:<queue> and :waiting are id ranges '<first>-<last>': a batch adds
-- one member to each, not one per record (ids of one batch are consecutive). A member may
-- hold ids whose records moved on or are gone: readers check each record and skip those, and
-- drop a member once none of its records is left for it. :all is scored by the first id.
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

-- Add delta to the counters of a record in (queue, status, class, type).
local function count(q, s, c, t, delta)
  local counts = base .. ':counts'
  redis.call('HINCRBY', counts, 's' .. SEP .. s, delta)
  redis.call('HINCRBY', counts, 'q' .. SEP .. q .. SEP .. s, delta)
  if is_open(s) then
    redis.call('HINCRBY', counts, 'c' .. SEP .. c, delta)
    redis.call('HINCRBY', counts, 't' .. SEP .. t, delta)
  end
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
