-- Retires a poison command in one step, so it can never loop: copies it to the dead-letter stream
-- with its reason, ends its task FAILED with that reason (when the task exists and has not
-- ended), and acks it.
--
-- KEYS[1]  tasks:commands       commands stream
-- KEYS[2]  tasks:dead           dead-letter stream (trimmed with MAXLEN ~)
-- KEYS[3]  task:<id>            state hash (untouched unless ARGV[7] is '1')
-- KEYS[4]  task:<id>:events     event stream (untouched unless ARGV[7] is '1')
-- ARGV[1]  consumer group name
-- ARGV[2]  command entry id
-- ARGV[3]  reason
-- ARGV[4]  approximate MAXLEN of the dead-letter stream
-- ARGV[5]  now, epoch milliseconds
-- ARGV[6]  TTL in seconds set on both task keys when the task ends here
-- ARGV[7]  '1' when the command names a well-formed task id, else '0'
-- ARGV[8]  the command's fields, JSON text
-- Returns  { dead-letter entry id, '1' when the task was ended FAILED here else '0' }
local dead_id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'command_id', ARGV[2], 'reason', ARGV[3], 'ts', ARGV[5], 'command', ARGV[8])
local failed = '0'
if ARGV[7] == '1' then
  local state = redis.call('HMGET', KEYS[3], 'status', 'progress', 'attempt')
  local status, progress, attempt = state[1], state[2], state[3]
  if status and status ~= 'COMPLETED' and status ~= 'FAILED' and status ~= 'CANCELLED' then
    local id = redis.call('XADD', KEYS[4], '*', 'type', 'stage', 'status', 'FAILED', 'progress', progress or '0', 'ts', ARGV[5],
      'error', ARGV[3], 'attempt', attempt or '1')
    redis.call('HSET', KEYS[3], 'status', 'FAILED', 'last_event_id', id, 'updated_at', ARGV[5], 'error', ARGV[3])
    redis.call('EXPIRE', KEYS[3], ARGV[6])
    redis.call('EXPIRE', KEYS[4], ARGV[6])
    failed = '1'
  end
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return { dead_id, failed }
