-- Token bucket, leaky bucket and GCRA (one meter; docs/ratelimit.md). KEYS[1] holds tat, the
-- time (us) at which the bucket is whole again; absent means whole. ARGV: 3 T (us per unit),
-- 4 capacity, 5 limit; then 'take': 6.. costs (decided in order); 'peek': 6 cost; 'lease':
-- 6 want, 7 need, 8 units given back. Replies: 4 integers per decision (see reply()); a
-- lease: {granted, remaining, retry, reset, tag}.
local key = KEYS[1]
local T, cap, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tau, units = cap * T, cap + 2
local raw = redis.call('GET', key)
local tat = raw and tonumber(raw) or nil
local changed = false

local function left(t)
  return whole((tau - (t - NOW)) / T)
end

-- The new tat if ``cost`` is admitted now (nil if refused), and the decision's fields.
local function decide(cost)
  local whole_bucket = tat == nil or tat <= NOW
  if cost > cap then
    if whole_bucket then
      return nil, limit, -1, 0
    end
    return nil, left(tat), -1, math.ceil(tat - NOW)
  end
  local new
  if whole_bucket then
    new = NOW + cost * T
  else
    new = tat + cost * T
    if NOW < new - tau then
      local at = new - tau - units * ulp(new)
      if NOW < at then
        return nil, left(tat), math.ceil(math.min(at, tat)) - NOW, math.ceil(tat - NOW)
      end
    end
  end
  return new, left(new), 0, math.ceil(new - NOW)
end

if OP == 'take' then
  for i = 6, #ARGV do
    local new, rem, retry, reset = decide(tonumber(ARGV[i]))
    if new then
      tat, changed = new, true
      reply(1, rem, 0, reset)
    else
      reply(0, rem, retry, reset)
    end
  end
elseif OP == 'peek' then
  local new, rem, retry, reset = decide(tonumber(ARGV[6]))
  reply(new and 1 or 0, rem, retry, reset)
elseif OP == 'lease' then
  local want, need, give = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  if give > 0 and tat ~= nil and tat > NOW then
    tat, changed = math.max(tat - give * T, NOW), true
  end
  local new, rem, retry, reset = decide(need)
  local granted = 0
  if new then
    local free = cap
    if tat ~= nil and tat > NOW then
      free = (tau - (tat - NOW)) / T
    end
    granted = lease_amount(want, need, free)
    local done = false
    for _ = 1, 8 do
      if granted <= need then
        break
      end
      local more, r2, _, z2 = decide(granted)
      if more then
        new, rem, reset, done = more, r2, z2, true
        break
      end
      granted = math.max(need, granted - 1)
    end
    if not done then
      granted = need -- new, rem and reset are need's
    end
    tat, changed = new, true
  end
  out = {num(granted), rem, retry, reset, '0'}
end

if changed then
  if tat ~= nil and tat > NOW then
    redis.call('SET', key, num(tat), 'PX', px_until(tat - NOW))
  else
    redis.call('DEL', key)
  end
end
return out
