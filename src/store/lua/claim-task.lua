-- Takes ownership of a task for one run. Only the consumer that holds the command in the group's
-- pending list may take it, so a paused worker that lost its command to XAUTOCLAIM cannot take it
-- back. Stores the caller's lease token: any earlier run is fenced off from appending events.
--
-- KEYS[1]  task:<id>        state hash
-- KEYS[2]  tasks:commands   commands stream
-- ARGV[1]  the new lease token
-- ARGV[2]  consumer group name
-- ARGV[3]  command entry id
-- ARGV[4]  consumer name of the caller
-- ARGV[5]  MAX_DELIVERIES: a command delivered more often than this is poison
-- Returns  { 'OK', stages recorded, attempt }     the caller owns the task now
--        | { 'CANCEL', stages recorded, attempt } cancel was requested: the caller owns the task
--                                                 and records CANCELLED
--        | { 'TERMINAL', status } | { 'GONE' }    nothing to run
--        | { 'POISON', deliveries }               dead-letter it
--        | { 'LOST' }                             the command is acked or another consumer holds it
local state = redis.call('HMGET', KEYS[1], 'status', 'step', 'attempt', 'cancel_requested')
local status, step, attempt, cancel = state[1], state[2], state[3], state[4]
if not status then return { 'GONE' } end
if status == 'COMPLETED' or status == 'FAILED' or status == 'CANCELLED' then return { 'TERMINAL', status } end
local pending = redis.call('XPENDING', KEYS[2], ARGV[2], ARGV[3], ARGV[3], 1)
local entry = pending[1]
if not entry or entry[2] ~= ARGV[4] then return { 'LOST' } end
if tonumber(entry[4]) > tonumber(ARGV[5]) then return { 'POISON', tostring(entry[4]) } end
redis.call('HSET', KEYS[1], 'lease', ARGV[1])
if cancel then return { 'CANCEL', step or '0', attempt or '1' } end
return { 'OK', step or '0', attempt or '1' }
