-- The rate-limit prelude, after the stores' prelude (load order: _lib, _rl, the script).
-- Times are integer microseconds since EPOCH (2020-09-13T12:26:40Z) on the server's clock:
-- exact in a Lua double (below 2^53) for centuries, where seconds near 1.7e9 would carry
-- an ulp of 0.24 us. ARGV[1] is the operation, ARGV[2] a test-only time override ('' in
-- production: the server's TIME), then the algorithm's parameters.
local EPOCH = 1600000000

local function clock_us(override)
  if override ~= '' then
    return tonumber(override)
  end
  local t = redis.call('TIME')
  return (tonumber(t[1]) - EPOCH) * 1000000 + tonumber(t[2])
end

-- The gap between x (> 0) and the next double: Python's math.ulp.
local function ulp(x)
  local _, e = math.frexp(math.abs(x))
  return 2 ^ (e - 53)
end

-- A double written so that tonumber() reads back the same double.
local function num(x)
  return string.format('%.17g', x)
end

-- Whole units left: floored after adding 1e-9 (as in memory), never negative.
local function whole(x)
  local n = math.floor(x + 1e-9)
  if n < 0 then
    return 0
  end
  return n
end

-- PEXPIRE milliseconds for a state that becomes idle ``us`` microseconds from now.
local function px_until(us)
  return math.max(1, math.ceil(us / 1000))
end

-- The amount a lease may take: at least ``need``, at most ``want``, what looks free first.
local function lease_amount(want, need, free)
  return math.max(need, math.floor(math.min(want, free) + 1e-9))
end

local OP = ARGV[1]
local NOW = clock_us(ARGV[2])
local out = {}

-- One decision's reply: allowed (1/0), remaining, retry (us; -1: never), reset (us).
local function reply(allowed, remaining, retry, reset)
  local n = #out
  out[n + 1] = allowed
  out[n + 2] = remaining
  out[n + 3] = retry
  out[n + 4] = reset
end
