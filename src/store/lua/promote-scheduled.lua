-- Promotes scheduled tasks that are due: per task, in one atomic step, its start command is
-- XADDed to its priority's stream (the hash's `queue`), a PENDING event is recorded (and in the
-- feeds), and its id leaves the scheduled set. A task is promoted only while it is in the set and due, so a re-run or
-- a second worker promotes nothing twice; a task that is no longer SCHEDULED (cancelled, expired)
-- only leaves the set.
--
-- KEYS[1]      tasks:scheduled    sorted set of task ids by due time (epoch ms)
-- KEYS[2k]     task:<id>          state hash of item k (k = 1..n)
-- KEYS[2k+1]   task:<id>:events   event stream of item k
-- ARGV[1]      now, epoch milliseconds
-- ARGV[k+1]    the task id of item k
-- Returns  one reply per item, in order: { 'PROMOTED', command id } | { 'NOT_DUE' } (not in the
--          set, or not due) | { 'DROPPED' } (left the set: not SCHEDULED) | { 'ERR', message }
-- An item cannot fail half way: HMGET fails on a hash of the wrong type, and the types of its
-- commands stream and event stream are checked before its first write (it stays scheduled).
local bad = wrong_type(KEYS[1], 'zset')
if bad then return redis.error_reply(bad) end
local now = tonumber(ARGV[1])

local function promote(hash, events, task_id)
  local due = redis.call('ZSCORE', KEYS[1], task_id)
  if not due or tonumber(due) > now then return { 'NOT_DUE' } end
  local state = redis.call('HMGET', hash, 'status', 'queue', 'progress')
  if state[1] ~= 'SCHEDULED' or not state[2] then
    redis.call('ZREM', KEYS[1], task_id)
    return { 'DROPPED' }
  end
  local wrong = wrong_type(events, 'stream', state[2], 'stream')
  if wrong then return { 'ERR', wrong } end
  local command_id = queue_command(hash, task_id)
  local event_id = redis.call('XADD', events, '*', 'type', 'stage', 'status', 'PENDING', 'progress', state[3] or '0', 'ts', ARGV[1])
  redis.call('HSET', hash, 'status', 'PENDING', 'last_event_id', event_id, 'updated_at', ARGV[1])
  feed_append_now(hash, 'PENDING', state[3] or '0', ARGV[1])
  redis.call('ZREM', KEYS[1], task_id)
  return { 'PROMOTED', command_id }
end

local replies = {}
for k = 1, (#KEYS - 1) / 2 do
  local ok, reply = pcall(promote, KEYS[2 * k], KEYS[2 * k + 1], ARGV[k + 1])
  if not ok then reply = { 'ERR', type(reply) == 'table' and tostring(reply.err) or tostring(reply) } end
  replies[k] = reply
end
return replies
