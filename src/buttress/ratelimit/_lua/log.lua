-- Sliding window log (docs/ratelimit.md). KEYS[1] is a sorted set of the admitted requests
-- (score: expiry in us, member 'seq:cost'), KEYS[2] a hash with their 'total' and the last
-- 'seq'. ARGV: 3 W (us), 4 limit; then 'take': 5.. costs; 'peek': 5 cost; 'lease': 5 want,
-- 6 need, 7 units given back, 8 tag (the lease's member). Replies as in meter.lua.
local Z, H = KEYS[1], KEYS[2]
local W, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local changed = false

local function cost_of(member)
  return tonumber(string.match(member, ':(.+)$'))
end

-- Drop the entries that expired at or before now.
local total = tonumber(redis.call('HGET', H, 'total') or '0')
local gone = redis.call('ZRANGEBYSCORE', Z, '-inf', NOW)
if #gone > 0 then
  for _, member in ipairs(gone) do
    total = total - cost_of(member)
  end
  redis.call('ZREMRANGEBYSCORE', Z, '-inf', NOW)
  changed = true
end
local newest = nil
local last = redis.call('ZRANGE', Z, -1, -1, 'WITHSCORES')
if #last > 0 then
  newest = tonumber(last[2])
else
  total = 0 -- no rounding residue from fractional costs
end

-- The expiry of the entry whose leaving (with every older one) makes room for ``cost``.
local function earliest(cost)
  local left = total
  local entries = redis.call('ZRANGE', Z, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    left = left - cost_of(entries[i])
    if left + cost <= limit then
      return tonumber(entries[i + 1])
    end
  end
  return newest
end

-- Whether ``cost`` is admitted now, the fields, and (when applied) the new entry's member.
local function decide(cost, apply)
  local reset = newest and newest - NOW or 0
  if cost > limit then
    return false, whole(limit - total), -1, reset
  end
  if total + cost <= limit then
    local member = nil
    if apply then
      member = redis.call('HINCRBY', H, 'seq', 1) .. ':' .. num(cost)
      redis.call('ZADD', Z, NOW + W, member)
      total, newest, changed = total + cost, NOW + W, true
      return true, whole(limit - total), 0, W, member
    end
    return true, whole(limit - total - cost), 0, W
  end
  return false, whole(limit - total), earliest(cost) - NOW, reset
end

if OP == 'take' then
  for i = 5, #ARGV do
    local ok, rem, retry, reset = decide(tonumber(ARGV[i]), true)
    reply(ok and 1 or 0, rem, retry, reset)
  end
elseif OP == 'peek' then
  local ok, rem, retry, reset = decide(tonumber(ARGV[5]), false)
  reply(ok and 1 or 0, rem, retry, reset)
elseif OP == 'lease' then
  local want, need, give, tag = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
  if give > 0 then
    local score = redis.call('ZSCORE', Z, tag)
    if score then
      local held = cost_of(tag)
      local back = math.min(give, held)
      redis.call('ZREM', Z, tag)
      if held - back > 0 then
        redis.call('ZADD', Z, score, string.match(tag, '^(%d+):') .. ':' .. num(held - back))
      end
      total, changed = math.max(0, total - back), true
      local top = redis.call('ZRANGE', Z, -1, -1, 'WITHSCORES')
      if #top > 0 then
        newest = tonumber(top[2])
      else
        total, newest = 0, nil
      end
    end
  end
  local granted, member = 0, '0'
  local ok, rem, retry, reset = decide(need, false)
  if ok then
    granted = lease_amount(want, need, limit - total)
    while granted > need and not decide(granted, false) do
      granted = math.max(need, granted - 1)
    end
    ok, rem, retry, reset, member = decide(granted, true)
  end
  out = {num(granted), rem, retry, reset, member}
end

if changed then
  if newest ~= nil and newest > NOW then
    redis.call('HSET', H, 'total', num(total))
    local px = px_until(newest - NOW)
    redis.call('PEXPIRE', Z, px)
    redis.call('PEXPIRE', H, px)
  else
    redis.call('DEL', Z, H)
  end
end
return out
