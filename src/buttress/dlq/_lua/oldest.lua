-- oldest: the first failure time of the oldest pending or retrying record, or false.
-- Walks :waiting from its lowest score; a member none of whose records still waits is
-- dropped (at most 100 members per call; past that the lowest remaining score is returned).
for _ = 1, 100 do
  local lowest = redis.call('ZRANGE', base .. ':waiting', 0, 0, 'WITHSCORES')
  if #lowest == 0 then
    return false
  end
  local first, last = bounds(lowest[1])
  for n = first, last do
    local s = some(tostring(n), 's')[1]
    if s == 'pending' or s == 'retrying' then
      return lowest[2]
    end
  end
  redis.call('ZREM', base .. ':waiting', lowest[1])
end
local lowest = redis.call('ZRANGE', base .. ':waiting', 0, 0, 'WITHSCORES')
return lowest[2] or false
