-- Removes the group's consumers that hold no pending command and have not been seen for a long
-- time: the names left behind by workers that crashed, were restarted or were scaled away. Each
-- is checked and removed in one step, so a consumer that reads a command meanwhile is never
-- removed (XGROUP DELCONSUMER would drop its pending entries with it).
--
-- KEYS[1]  tasks:commands   commands stream
-- ARGV[1]  consumer group name
-- ARGV[2]  idle time, ms, above which a consumer with no pending command is removed. Removing a
--          live worker's consumer is harmless (Redis re-creates it when it next reads a
--          command); the bound keeps that rare
-- ARGV[3]  a consumer name never removed (the caller's own)
-- Returns  the names removed
local removed = {}
for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
  if f['name'] ~= ARGV[3] and tonumber(f['pending']) == 0 and tonumber(f['idle']) > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed[#removed + 1] = f['name']
  end
end
return removed
