-- A fleet-wide circuit breaker: one call per sync, permit, trial report or manual change.
-- KEYS[1] state hash (state, until, gen, ok), KEYS[2] the window: a bucket hash (c:<b>,
-- f:<b>, s:<b>) for a time window, a list of flushes ('ms:calls:failures:slow', newest first)
-- for a count one, KEYS[3] half-open permit counter. ARGV[1] is the operation, ARGV[2] the
-- pub/sub channel. Every reply is {state, ms until open ends (0 unless open), generation};
-- every change is published as 'gen:state:ms until open ends'.
local S, B, P = KEYS[1], KEYS[2], KEYS[3]
local op, channel = ARGV[1], ARGV[2]
local now = now_ms()

local function reply()
  local st = redis.call('HMGET', S, 'state', 'until', 'gen')
  local state = st[1] or 'closed'
  local left = 0
  if state == 'open' then
    left = math.max(0, tonumber(st[2]) - now)
  end
  return {state, left, tonumber(st[3] or '0')}
end

-- Move to ``state`` (open for ``open_ms``), start a new generation and tell every process.
local function move(state, open_ms, reason)
  local gen = redis.call('HINCRBY', S, 'gen', 1)
  redis.call('HSET', S, 'state', state, 'until', now + open_ms, 'ok', 0, 'reason', reason)
  redis.call('DEL', P, B)
  redis.call('PUBLISH', channel, gen .. ':' .. state .. ':' .. open_ms)
end

if op == 'sync' then
  -- ARGV: 3 calls, 4 failures, 5 slow, 6 bucket ms, 7 max buckets, 8 count window (0: time),
  -- 9 failure rate, 10 minimum calls, 11 slow rate, 12 open ms, 13 head: how many of the
  -- calls came before the first failed or slow one (a count window keeps them apart)
  local calls, fails, slow = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local width, span, count = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local state = redis.call('HGET', S, 'state') or 'closed'
  if calls > 0 and state == 'closed' then
    local n, f, s = 0, 0, 0
    if count > 0 then
      -- A count window: the newest ``count`` calls, taken from the newest flushes (none older
      -- than ``span`` buckets); of the oldest flush it reaches, a share in proportion.
      local head = math.max(0, math.min(tonumber(ARGV[13]), calls - 1))
      if head > 0 then
        redis.call('LPUSH', B, now .. ':' .. head .. ':0:0')
      end
      redis.call('LPUSH', B, now .. ':' .. (calls - head) .. ':' .. fails .. ':' .. slow)
      redis.call('LTRIM', B, 0, count - 1)
      redis.call('PEXPIRE', B, width * span)
      local oldest = now - width * span
      for _, entry in ipairs(redis.call('LRANGE', B, 0, count - 1)) do
        local t, c, fl, sl = string.match(entry, '(%d+):(%d+):(%d+):(%d+)')
        c = tonumber(c)
        if tonumber(t) < oldest then break end
        if n + c >= count then
          local share = (count - n) / c
          n, f, s = count, f + tonumber(fl) * share, s + tonumber(sl) * share
          break
        end
        n, f, s = n + c, f + tonumber(fl), s + tonumber(sl)
      end
    else
      local b = math.floor(now / width)
      redis.call('HINCRBY', B, 'c:' .. b, calls)
      if fails > 0 then redis.call('HINCRBY', B, 'f:' .. b, fails) end
      if slow > 0 then redis.call('HINCRBY', B, 's:' .. b, slow) end
      redis.call('PEXPIRE', B, width * (span + 1))
      for old = b - span - 10, b - span do
        redis.call('HDEL', B, 'c:' .. old, 'f:' .. old, 's:' .. old)
      end
      for i = b, b - span + 1, -1 do
        local v = redis.call('HMGET', B, 'c:' .. i, 'f:' .. i, 's:' .. i)
        n = n + tonumber(v[1] or '0')
        f = f + tonumber(v[2] or '0')
        s = s + tonumber(v[3] or '0')
      end
    end
    if n >= tonumber(ARGV[10]) then
      if f > 0 and f / n >= tonumber(ARGV[9]) then
        move('open', tonumber(ARGV[12]), string.format('fleet failure rate %.1f/%d', f, n))
      elseif s > 0 and s / n >= tonumber(ARGV[11]) then
        move('open', tonumber(ARGV[12]), string.format('fleet slow-call rate %.1f/%d', s, n))
      end
    end
  end
elseif op == 'permit' then
  -- ARGV: 3 half-open calls, 4 permit ttl ms. Reply gets a 4th item: 1 granted, 0 denied.
  local r = reply()
  if r[1] ~= 'open' or r[2] > 0 then
    table.insert(r, r[1] == 'open' and 0 or 1)
    return r
  end
  local taken = redis.call('INCR', P)
  if taken == 1 then redis.call('PEXPIRE', P, tonumber(ARGV[4])) end
  table.insert(r, taken <= tonumber(ARGV[3]) and 1 or 0)
  return r
elseif op == 'trial' then
  -- ARGV: 3 failed (1/0), 4 success threshold, 5 open ms. Only counts in half-open.
  local r = reply()
  if r[1] == 'open' and r[2] == 0 then
    if ARGV[3] == '1' then
      move('open', tonumber(ARGV[5]), 'a fleet trial call failed')
    elseif redis.call('HINCRBY', S, 'ok', 1) >= tonumber(ARGV[4]) then
      move('closed', 0, 'fleet trial calls succeeded')
    end
  end
elseif op == 'force' then
  -- ARGV: 3 state (closed, forced_open, disabled)
  move(ARGV[3], 0, 'set by hand')
end
return reply()
