-- Sliding window counter (docs/ratelimit.md). KEYS[1] holds 'end prev curr': ``curr`` counts
-- the window [end - W, end), ``prev`` the one before; absent means both empty. ARGV: 3 W (us),
-- 4 limit; then 'take': 5.. costs; 'peek': 5 cost; 'lease': 5 want, 6 need, 7 units given
-- back, 8 tag (the end of the window the lease was counted in). Replies as in meter.lua.
local key = KEYS[1]
local W, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local raw = redis.call('GET', key)
local se, sp, sc -- the stored state, or nil
if raw then
  local a, b, c = string.match(raw, '(%S+) (%S+) (%S+)')
  se, sp, sc = tonumber(a), tonumber(b), tonumber(c)
end

-- The stored state's windows rolled to time t.
local function roll(t)
  if se == nil or t >= se + W then
    return t + W, 0, 0
  elseif t >= se then
    return se + W, sc, 0
  end
  return se, sp, sc
end

local function fits(e, p, c, t, cost)
  local room = limit - c - cost
  return room >= 0 and (p <= room or t >= e - room * W / p)
end

local e, p, c = roll(NOW) -- the windows now; written back only when something changed
local changed = false

-- The first time (us) at which ``cost`` fits, the state unchanged.
local function earliest(cost)
  local room = limit - c - cost
  local at
  if room >= 0 then
    at = e - room * W / p
  else -- not before the next window, where today's count is the previous one
    at = math.max(e, (e + W) - (limit - cost) * W / c)
  end
  at = math.ceil(at)
  for _ = 1, 8 do
    local e2, p2, c2 = roll(at)
    if fits(e2, p2, c2, at, cost) then
      return at
    end
    at = at + 1
  end
  return e + W
end

local function decide(cost, apply)
  if cost <= limit and fits(e, p, c, NOW, cost) then
    if apply then
      c, changed = c + cost, true
      se, sp, sc = e, p, c
    end
    local after = apply and c or c + cost
    return true, whole(limit - (p * (e - NOW) / W + after)), 0, e + W - NOW
  end
  local rem = whole(limit - (p * (e - NOW) / W + c))
  local reset = 0
  if c > 0 then
    reset = e + W - NOW
  elseif p > 0 then
    reset = e - NOW
  end
  if cost > limit then
    return false, rem, -1, reset
  end
  return false, rem, earliest(cost) - NOW, reset
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
  if give > 0 then
    if num(e) == ARGV[8] then
      c, changed = math.max(0, c - give), true
    elseif num(e - W) == ARGV[8] then
      p, changed = math.max(0, p - give), true
    end
    se, sp, sc = e, p, c
  end
  local granted = 0
  local ok, rem, retry, reset = decide(need, false)
  if ok then
    granted = lease_amount(want, need, limit - c - p * (e - NOW) / W)
    while granted > need and not decide(granted, false) do
      granted = math.max(need, granted - 1)
    end
    ok, rem, retry, reset = decide(granted, true)
  end
  out = {num(granted), rem, retry, reset, num(e)}
end

if changed then
  if NOW < e + W then
    redis.call('SET', key, num(e) .. ' ' .. num(p) .. ' ' .. num(c), 'PX', px_until(e + W - NOW))
  else
    redis.call('DEL', key)
  end
end
return out
