-- Cancels a task. A task no worker has claimed yet (empty lease; SCHEDULED or PENDING) ends
-- CANCELLED here (and in the feeds), before it starts; a scheduled one leaves the scheduled set,
-- one waiting for a concurrency slot leaves the waiting list (and one that holds a slot frees it);
-- its command is acked if delivered (an undelivered one is acked by the worker that reads
-- it and finds the task finished). A claimed task gets a cancel request: the hash field stops
-- every further event but CANCELLED (see append-events.lua), and a message on the cancel channel
-- tells the running worker to abort its handler at once.
--
-- KEYS[1]  task:<id>            state hash
-- KEYS[2]  task:<id>:events     event stream
-- KEYS[3]  tasks:commands       commands stream, unless the hash names its own (`queue`)
-- KEYS[4]  tasks:scheduled      scheduled set: a SCHEDULED task leaves it
-- ARGV[1]  task id
-- ARGV[2]  now, epoch milliseconds
-- ARGV[3]  TTL in seconds set on both task keys when the task ends here
-- ARGV[4]  consumer group name
-- ARGV[5]  cancel channel
-- Returns  { 'CANCELLED', event id } | { 'REQUESTED' } | { 'TERMINAL', status } | { 'GONE' }
--        | error 'WRONGTYPE <key> holds a ..., not a ...' (a task key of the wrong type): nothing written
-- Checks the types of the task's keys before it writes, so no write can fail half way.
local bad = wrong_type(KEYS[1], 'hash', KEYS[2], 'stream', KEYS[4], 'zset')
if bad then return redis.error_reply(bad) end
local state = redis.call('HMGET', KEYS[1], 'status', 'lease', 'progress', 'command_id', 'cancel_requested', 'queue')
local status, lease, progress, command_id, requested = state[1], state[2], state[3], state[4], state[5]
if not status then return { 'GONE' } end
if is_terminal(status) then return { 'TERMINAL', status } end
if requested then
  redis.call('PUBLISH', ARGV[5], ARGV[1])
  return { 'REQUESTED' }
end
if lease and lease ~= '' then
  redis.call('HSET', KEYS[1], 'cancel_requested', ARGV[2])
  redis.call('PUBLISH', ARGV[5], ARGV[1])
  return { 'REQUESTED' }
end
local id = redis.call('XADD', KEYS[2], '*', 'type', 'stage', 'status', 'CANCELLED', 'progress', progress or '0', 'ts', ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'CANCELLED', 'last_event_id', id, 'updated_at', ARGV[2], 'cancel_requested', ARGV[2])
feed_append_now(KEYS[1], 'CANCELLED', progress or '0', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
release_slot(KEYS[1])
if status == 'SCHEDULED' then redis.call('ZREM', KEYS[4], ARGV[1]) end
if command_id and command_id ~= '' then redis.call('XACK', state[6] or KEYS[3], ARGV[4], command_id) end
return { 'CANCELLED', id }
