-- Fixed window (docs/ratelimit.md). KEYS[1] holds 'end count': the window ends at ``end``
-- (us) and has admitted ``count``; absent means no window. ARGV: 3 W (us), 4 limit; then
-- 'take': 5.. costs; 'peek': 5 cost; 'lease': 5 want, 6 need, 7 units given back, 8 tag (the
-- end of the window the lease was counted in). Replies as in meter.lua; a lease's tag is the
-- window's end.
local key = KEYS[1]
local W, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local raw = redis.call('GET', key)
local wend, count
if raw then
  local a, b = string.match(raw, '(%S+) (%S+)')
  wend, count = tonumber(a), tonumber(b)
end
local changed = false

-- Whether ``cost`` is admitted now, and the decision's fields; admitting updates the state.
local function decide(cost, apply)
  if wend == nil or NOW >= wend then
    if cost > limit then
      return false, limit, -1, 0
    end
    if apply then
      wend, count, changed = NOW + W, cost, true
    end
    return true, whole(limit - cost), 0, W
  end
  if cost > limit then
    return false, whole(limit - count), -1, wend - NOW
  end
  if count + cost <= limit then
    if apply then
      count, changed = count + cost, true
    end
    return true, whole(limit - count - (apply and 0 or cost)), 0, wend - NOW
  end
  return false, whole(limit - count), wend - NOW, wend - NOW
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
  local want, need, give = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  if give > 0 and wend ~= nil and NOW < wend and num(wend) == ARGV[8] then
    count, changed = math.max(0, count - give), true
  end
  local granted = 0
  local ok, rem, retry, reset = decide(need, false)
  if ok then
    local free = limit
    if wend ~= nil and NOW < wend then
      free = limit - count
    end
    granted = lease_amount(want, need, free)
    while granted > need and not decide(granted, false) do
      granted = math.max(need, granted - 1)
    end
    ok, rem, retry, reset = decide(granted, true)
  end
  out = {num(granted), rem, retry, reset, wend and num(wend) or '0'}
end

if changed then
  if NOW < wend then
    redis.call('SET', key, num(wend) .. ' ' .. num(count), 'PX', px_until(wend - NOW))
  else
    redis.call('DEL', key)
  end
end
return out
