-- Creates tasks, each in one atomic step: its state hash, its first event, its start command (or,
-- for a scheduled start, its entry in the scheduled set) and its entry in the recent-tasks index.
-- There is never a command without its task, nor a task without its command or schedule. One call carries the starts a gateway received while its previous call
-- was on its way (a group commit); items are independent.
--
-- KEYS[1]      tasks:commands       commands stream (of normal priority; type check only)
-- KEYS[2]      tasks:index          sorted set of task ids by creation time (ms)
-- KEYS[2k+1]   task:<id>            state hash of item k (k = 1..n)
-- KEYS[2k+2]   task:<id>:events     event stream of item k
-- ARGV[1]      TASK_TTL_S: the index expires after it. Entries older than it are pruned by the
--              workers' maintenance (pruneIndex), off this hot path.
-- ARGV[9k-7..9k+1]  item k: task id, task type, params (JSON text), now (epoch milliseconds),
--              priority (high | normal | low), its commands stream (a key name, from keys.ts),
--              due time (epoch ms; '' for now), the scheduled set (tasks:scheduled, a key name),
--              concurrency key ('' none; a field of the command and the hash)
-- A task due now: status PENDING, its command XADDed to its priority's stream. A scheduled one:
-- status SCHEDULED with `run_at` (event and hash), its id in the scheduled set scored by its due
-- time, no command (promote-scheduled.lua adds it when due). The hash keeps `priority` and
-- `queue` (its commands stream: scripts XACK and re-enqueue there).
-- Returns  one reply per item, in order: { 'OK', first event id, command id ('' when scheduled) }
--          | { 'ERR', message };
--          or the error 'WRONGTYPE ...' for the whole call when KEYS[1] or KEYS[2] is of the wrong
--          type (nothing written).
-- The caller generates task ids (UUID v4), so an item's keys are new: neither existence nor type
-- check. The shared keys' types are checked once per call, before the first write, so that an
-- item is never left half written.
local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'zset')
if bad then return redis.error_reply(bad) end

local function start(hash, events, task_id, task_type, params, now, priority, stream, run_at, scheduled, concurrency_key)
  local status, command_id, event_id = 'PENDING', '', nil
  if run_at == '' then
    if concurrency_key == '' then
      command_id = redis.call('XADD', stream, '*', 'task_id', task_id, 'type', task_type, 'params', params)
    else
      command_id = redis.call('XADD', stream, '*', 'task_id', task_id, 'type', task_type, 'params', params,
        'concurrency_key', concurrency_key)
    end
    event_id = redis.call('XADD', events, '*', 'type', 'stage', 'status', status, 'progress', '0', 'ts', now)
  else
    status = 'SCHEDULED'
    redis.call('ZADD', scheduled, run_at, task_id)
    event_id = redis.call('XADD', events, '*', 'type', 'stage', 'status', status, 'progress', '0', 'ts', now, 'run_at', run_at)
    redis.call('HSET', hash, 'run_at', run_at)
  end
  redis.call('HSET', hash,
    'status', status, 'progress', '0', 'last_event_id', event_id,
    'created_at', now, 'updated_at', now,
    'type', task_type, 'params', params, 'step', '0', 'lease', '',
    'priority', priority, 'queue', stream,
    -- Kept so that cancelling the task before it starts can ack its command.
    'command_id', command_id)
  if concurrency_key ~= '' then redis.call('HSET', hash, 'concurrency_key', concurrency_key) end
  redis.call('ZADD', KEYS[2], now, task_id)
  return { 'OK', event_id, command_id }
end

local replies = {}
for k = 1, (#KEYS - 2) / 2 do
  local a = 9 * k - 7
  local ok, reply = pcall(start, KEYS[2 * k + 1], KEYS[2 * k + 2], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
    ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8])
  if not ok then reply = { 'ERR', type(reply) == 'table' and tostring(reply.err) or tostring(reply) } end
  replies[k] = reply
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return replies
