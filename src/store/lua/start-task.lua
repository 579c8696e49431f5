-- Creates a task in one atomic step: its state hash, its first event, its start command and its
-- entry in the recent-tasks index. There is never a command without its task, nor a task without
-- its command.
--
-- KEYS[1]  task:<id>            state hash
-- KEYS[2]  task:<id>:events     event stream
-- KEYS[3]  tasks:commands       commands stream
-- KEYS[4]  tasks:index          sorted set of task ids by creation time (ms)
-- ARGV[1]  task id
-- ARGV[2]  task type
-- ARGV[3]  params (JSON text)
-- ARGV[4]  now, epoch milliseconds
-- ARGV[5]  TASK_TTL_S: the index expires after it. Entries older than it are pruned by the
--          workers' maintenance (pruneIndex), off this hot path.
-- Returns  { first event id, command id }. The caller generates task ids (UUID v4), so the keys are
-- new: no existence check.
local command_id = redis.call('XADD', KEYS[3], '*', 'task_id', ARGV[1], 'type', ARGV[2], 'params', ARGV[3])
local event_id = redis.call('XADD', KEYS[2], '*', 'status', 'PENDING', 'progress', '0', 'ts', ARGV[4])
redis.call('HSET', KEYS[1],
  'status', 'PENDING', 'progress', '0', 'last_event_id', event_id,
  'created_at', ARGV[4], 'updated_at', ARGV[4],
  'type', ARGV[2], 'params', ARGV[3], 'step', '0', 'lease', '',
  -- Kept so that cancelling the task before it starts can ack its command.
  'command_id', command_id)
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('EXPIRE', KEYS[4], ARGV[5])
return { event_id, command_id }
