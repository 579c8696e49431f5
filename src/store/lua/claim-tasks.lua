-- Takes ownership of tasks for one run each; one call carries the claims a worker makes in one
-- event-loop turn, and each item is decided on its own. Only the consumer that holds the command
-- in the group's pending list may take its task, so a paused worker that lost its command to
-- XAUTOCLAIM cannot take it back. Stores the caller's lease token: any earlier run is fenced off
-- from appending events.
--
-- KEYS[1]     tasks:commands   commands stream
-- KEYS[k+1]   task:<id>        state hash of item k (k = 1..n)
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name of the caller
-- ARGV[3]     MAX_DELIVERIES: a command delivered more often than this is poison
-- ARGV[2k+2]  the new lease token of item k
-- ARGV[2k+3]  the command entry id of item k
-- Returns  one reply per item, in order:
--          { 'OK', stages recorded, attempt }     the caller owns the task now
--        | { 'CANCEL', stages recorded, attempt } cancel was requested: the caller owns the task
--                                                 and records CANCELLED
--        | { 'TERMINAL', status } | { 'GONE' }    nothing to run
--        | { 'POISON', deliveries }               dead-letter it
--        | { 'LOST' }                             the command is acked or another consumer holds it
--        | { 'ERR', message }                     a Redis error (e.g. a key of the wrong type)
local group, consumer, max_deliveries = ARGV[1], ARGV[2], tonumber(ARGV[3])

local function claim(hash, lease, command_id)
  local state = redis.call('HMGET', hash, 'status', 'step', 'attempt', 'cancel_requested')
  local status, step, attempt, cancel = state[1], state[2], state[3], state[4]
  if not status then return { 'GONE' } end
  if status == 'COMPLETED' or status == 'FAILED' or status == 'CANCELLED' then return { 'TERMINAL', status } end
  local pending = redis.call('XPENDING', KEYS[1], group, command_id, command_id, 1)
  local entry = pending[1]
  if not entry or entry[2] ~= consumer then return { 'LOST' } end
  if tonumber(entry[4]) > max_deliveries then return { 'POISON', tostring(entry[4]) } end
  redis.call('HSET', hash, 'lease', lease)
  if cancel then return { 'CANCEL', step or '0', attempt or '1' } end
  return { 'OK', step or '0', attempt or '1' }
end

local replies = {}
for k = 1, #KEYS - 1 do
  local ok, reply = pcall(claim, KEYS[k + 1], ARGV[2 * k + 2], ARGV[2 * k + 3])
  if not ok then reply = { 'ERR', type(reply) == 'table' and tostring(reply.err) or tostring(reply) } end
  replies[k] = reply
end
return replies
