-- Takes ownership of tasks for one run each; one call carries the claims a worker makes in one
-- event-loop turn, and each item is decided on its own. Only the consumer that holds the command
-- in the group's pending list may take its task, so a paused worker that lost its command to
-- XAUTOCLAIM cannot take it back. Stores the caller's lease token: any earlier run is fenced off
-- from appending events, and the new run numbers its events from 1 (`seq`). A claim that takes
-- the task over from an earlier run (the hash held a lease) records a `restart` event: the output
-- that run recorded since its last stage event is void (see src/wire/output.ts).
--
-- KEYS[1]      tasks:commands     commands stream of the tasks whose hash names none (`queue`: the
--                                 stream of the task's priority, where its command is pending)
-- KEYS[2k]     task:<id>          state hash of item k (k = 1..n)
-- KEYS[2k+1]   task:<id>:events   event stream of item k
-- ARGV[1]      consumer group name
-- ARGV[2]      consumer name of the caller
-- ARGV[3]      MAX_DELIVERIES: a command delivered more often than this is poison
-- ARGV[4]      now, epoch milliseconds (the time of a restart event)
-- ARGV[2k+3]   the new lease token of item k
-- ARGV[2k+4]   the command entry id of item k
-- Returns  one reply per item, in order:
--          { 'OK', stages recorded, attempt }     the caller owns the task now
--        | { 'CANCEL', stages recorded, attempt } cancel was requested: the caller owns the task
--                                                 and records CANCELLED
--        | { 'TERMINAL', status } | { 'GONE' }    nothing to run
--        | { 'POISON', deliveries }               dead-letter it
--        | { 'LOST' }                             the command is acked or another consumer holds it
--        | { 'ERR', message }                     a Redis error, e.g. 'WRONGTYPE <key> holds a
--                                                 string, not a hash' (bad data); nothing written
-- An item cannot fail half way: HMGET fails on a hash of the wrong type before any write, and its
-- first write is either the restart XADD (which fails on a stream of the wrong type with nothing
-- written) or the HSET of the hash HMGET read.
local group, consumer, max_deliveries, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local function claim(hash, events, lease, command_id)
  local state = redis.call('HMGET', hash, 'status', 'step', 'attempt', 'cancel_requested', 'lease', 'progress', 'queue')
  local status, step, attempt, cancel, previous = state[1], state[2], state[3], state[4], state[5]
  if not status then return { 'GONE' } end
  if is_terminal(status) then return { 'TERMINAL', status } end
  local pending = redis.call('XPENDING', state[7] or KEYS[1], group, command_id, command_id, 1)
  local entry = pending[1]
  if not entry or entry[2] ~= consumer then return { 'LOST' } end
  if tonumber(entry[4]) > max_deliveries then return { 'POISON', tostring(entry[4]) } end
  if previous and previous ~= '' then
    local id = redis.call('XADD', events, '*', 'type', 'restart', 'status', status, 'progress', state[6] or '0', 'ts', now)
    redis.call('HSET', hash, 'lease', lease, 'seq', '0', 'last_event_id', id, 'updated_at', now)
    redis.call('HDEL', hash, 'message')
  else
    redis.call('HSET', hash, 'lease', lease, 'seq', '0')
  end
  if cancel then return { 'CANCEL', step or '0', attempt or '1' } end
  return { 'OK', step or '0', attempt or '1' }
end

local replies = {}
for k = 1, (#KEYS - 1) / 2 do
  local ok, reply = pcall(claim, KEYS[2 * k], KEYS[2 * k + 1], ARGV[2 * k + 3], ARGV[2 * k + 4])
  if not ok then reply = { 'ERR', type(reply) == 'table' and tostring(reply.err) or tostring(reply) } end
  replies[k] = reply
end
return replies
