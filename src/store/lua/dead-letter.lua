-- Retires a poison command in one step, so it can never loop: copies it to the dead-letter stream
-- with its reason, ends its task FAILED with that reason (when the task exists and has not
-- ended; in the feeds too; its concurrency slot is freed), and acks it. All or nothing: every key's type is checked before the first write, so no
-- write can fail after one has been made. A task whose keys hold the wrong type (bad data: no
-- FAILED event can be recorded in a key that is not a stream) is left as it is, and the dead
-- letter's reason says so; the command is acked all the same, so it is dead-lettered once.
--
-- KEYS[1]  tasks:commands       the commands stream the command was read from (its priority's)
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
-- Returns  { dead-letter entry id, outcome }, outcome being 'FAILED' (the task was ended FAILED
--          here), 'CORRUPTED' (its keys hold the wrong type: not ended) or 'UNTOUCHED' (no
--          task, a malformed id, or a task that had ended)
--        | error 'WRONGTYPE ...' when KEYS[1] or KEYS[2] is not a stream: nothing written
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'stream')
if bad then return redis.error_reply(bad) end

local reason, outcome, state = ARGV[3], 'UNTOUCHED', nil
if ARGV[7] == '1' then
  local corrupted = wrong_type(KEYS[3], 'hash', KEYS[4], 'stream')
  if corrupted then
    reason = reason .. '; the task cannot be ended FAILED: ' .. corrupted
    outcome = 'CORRUPTED'
  else
    state = redis.call('HMGET', KEYS[3], 'status', 'progress', 'attempt')
  end
end

local dead_id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'command_id', ARGV[2], 'reason', reason, 'ts', ARGV[5], 'command', ARGV[8])
if state and state[1] and not is_terminal(state[1]) then
  local id = redis.call('XADD', KEYS[4], '*', 'type', 'stage', 'status', 'FAILED', 'progress', state[2] or '0', 'ts', ARGV[5],
    'error', ARGV[3], 'attempt', state[3] or '1')
  redis.call('HSET', KEYS[3], 'status', 'FAILED', 'last_event_id', id, 'updated_at', ARGV[5], 'error', ARGV[3])
  feed_append_now(KEYS[3], 'FAILED', state[2] or '0', ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
  redis.call('EXPIRE', KEYS[4], ARGV[6])
  release_slot(KEYS[3])
  outcome = 'FAILED'
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return { dead_id, outcome }
