-- read: records by id, wherever they are stored (their own hash or their batch's).
-- ARGV: what ('all': every field, HGETALL's flat list, empty when there is no such record;
--       'row': queue, status, class, error type, first failure), then the ids.
local out = {}
local all = ARGV[1] == 'all'
for i = 2, #ARGV do
  if all then
    out[#out + 1] = fields(ARGV[i])
  else
    out[#out + 1] = some(ARGV[i], 'q', 's', 'c', 't', 'f')
  end
end
return out
