-- The buttress prelude: load_script() puts it before every script's own source.

-- The server's time in whole milliseconds since the epoch: the one clock of a fleet.
-- Scripts use it for anything computed from time (buckets, deadlines), never a client clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A ttl argument in milliseconds, or nil when the caller sent '' (no expiry).
local function px(arg)
  if arg == nil or arg == '' then
    return nil
  end
  return tonumber(arg)
end

