-- Trims the commands stream once it is longer than its bound, never removing an entry that is
-- still pending (delivered, not acked) or not yet delivered to the group: MINID is the oldest
-- of the group's oldest pending id and its last-delivered id. `~` trims whole macro nodes only,
-- so it removes no more than exact trimming would.
--
-- KEYS[1]  tasks:commands   commands stream
-- ARGV[1]  consumer group name
-- ARGV[2]  length above which the stream is trimmed
-- Returns  number of entries removed
if redis.call('XLEN', KEYS[1]) <= tonumber(ARGV[2]) then return 0 end

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function older(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end

local bound
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  if info['name'] == ARGV[1] then bound = info['last-delivered-id'] end
end
if not bound then return 0 end
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
if tonumber(summary[1]) > 0 and older(summary[2], bound) then bound = summary[2] end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', bound)
