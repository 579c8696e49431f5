-- Takes ownership of a task for one run: stores a fresh lease token so that any earlier owner
-- (a paused or partitioned worker) is fenced off from appending events.
--
-- KEYS[1]  task:<id>   state hash
-- ARGV[1]  the new lease token
-- Returns  { 'OK', stages already recorded } | { 'TERMINAL', status } | { 'GONE' }
local state = redis.call('HMGET', KEYS[1], 'status', 'step')
local status, step = state[1], state[2]
if not status then return { 'GONE' } end
if status == 'COMPLETED' or status == 'FAILED' or status == 'CANCELLED' then return { 'TERMINAL', status } end
redis.call('HSET', KEYS[1], 'lease', ARGV[1])
return { 'OK', step or '0' }
