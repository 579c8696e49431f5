-- Takes ownership of tasks for one run each; one call carries the claims a worker makes in one
-- event-loop turn, and each item is decided on its own. Only the consumer that holds the command
-- in the group's pending list may take its task, so a paused worker that lost its command to
-- XAUTOCLAIM cannot take it back. Stores the caller's lease token: any earlier run is fenced off
-- from appending events, and the new run numbers its events from 1 (`seq`). A claim that takes
-- the task over from an earlier run (the hash held a lease) records a `restart` event: the output
-- that run recorded since its last stage event is void (see src/wire/output.ts). Unless a cancel
-- was requested: then the only event left to record is CANCELLED (the caller's), which commits that
-- output as any cancel does.
--
-- KEYS[1]      tasks:commands     commands stream of the tasks whose hash names none (`queue`: the
--                                 stream of the task's priority, where its command is pending)
-- KEYS[2k]     task:<id>          state hash of item k (k = 1..n)
-- KEYS[2k+1]   task:<id>:events   event stream of item k
-- ARGV[1]      consumer group name
-- ARGV[2]      consumer name of the caller
-- ARGV[3]      MAX_DELIVERIES: a command delivered more often than this is poison
-- ARGV[4]      now, epoch milliseconds (the time of a restart event)
-- ARGV[7k-2]   the new lease token of item k
-- ARGV[7k-1]   the command entry id of item k
-- ARGV[7k..7k+4]  item k's concurrency slots (see prelude.lua): holders, key counts and waiting
--              list of its type (key names; '' holders: its type and start set no limit), its
--              type's limit and per-key limit (0: none)
-- A task of a limited type that holds no slot takes one if it fits (its type's holders below the
-- limit, and those with its concurrency key below the per-key limit); else it waits for one: it
-- joins its type's waiting list, its hash gets `waiting_for_slot` ('concurrency' or
-- 'concurrency_key'), its command is acked, and a release queues it again (prelude slot_wake),
-- holding its slot. A task that holds its slot (woken, or reclaimed from a dead worker) keeps it.
-- Returns  one reply per item, in order:
--          { 'OK', stages recorded, attempt }     the caller owns the task now
--        | { 'CANCEL', stages recorded, attempt } cancel was requested: the caller owns the task
--                                                 and records CANCELLED
--        | { 'TERMINAL', status } | { 'GONE' }    nothing to run
--        | { 'POISON', deliveries }               dead-letter it
--        | { 'LOST' }                             the command is acked or another consumer holds it
--        | { 'WAIT', reason }                     over its limit: waits for a slot, command acked
--        | { 'ERR', message }                     a Redis error, e.g. 'WRONGTYPE <key> holds a
--                                                 string, not a hash' (bad data); nothing written
-- An item cannot fail half way: HMGET fails on a hash of the wrong type before any write, and its
-- first write is either the restart XADD (which fails on a stream of the wrong type with nothing
-- written) or the HSET of the hash HMGET read.
local group, consumer, max_deliveries, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local function claim(hash, events, lease, command_id, holders, key_counts, waiting, limit, key_limit)
  local state = redis.call('HMGET', hash, 'status', 'step', 'attempt', 'cancel_requested', 'lease', 'progress', 'queue',
    'concurrency_key', 'waiting_for_slot')
  local status, step, attempt, cancel, previous = state[1], state[2], state[3], state[4], state[5]
  if not status then return { 'GONE' } end
  if is_terminal(status) then return { 'TERMINAL', status } end
  local pending = redis.call('XPENDING', state[7] or KEYS[1], group, command_id, command_id, 1)
  local entry = pending[1]
  if not entry or entry[2] ~= consumer then return { 'LOST' } end
  if tonumber(entry[4]) > max_deliveries then return { 'POISON', tostring(entry[4]) } end
  local task_id = task_id_of(hash)
  if holders ~= '' and redis.call('HEXISTS', holders, task_id) == 0 then
    local key = state[8] or ''
    local reason = state[9]
    if not reason then
      redis.call('HSET', hash, 'slots', holders, 'slot_keys', key_counts, 'slot_waiting', waiting,
        'slot_limit', limit, 'slot_key_limit', key_limit)
      if slot_fits(holders, key_counts, tonumber(limit), tonumber(key_limit), key) then
        slot_take(holders, key_counts, task_id, key)
      else
        reason = 'concurrency_key'
        if tonumber(limit) > 0 and redis.call('HLEN', holders) >= tonumber(limit) then reason = 'concurrency' end
        redis.call('RPUSH', waiting, task_id)
        redis.call('HSET', hash, 'waiting_for_slot', reason)
      end
    end
    if reason then
      redis.call('XACK', state[7] or KEYS[1], group, command_id)
      return { 'WAIT', reason }
    end
  end
  if previous and previous ~= '' and not cancel then
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
  local a = 7 * k - 2
  local ok, reply = pcall(claim, KEYS[2 * k], KEYS[2 * k + 1], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
    ARGV[a + 5], ARGV[a + 6])
  if not ok then reply = { 'ERR', type(reply) == 'table' and tostring(reply.err) or tostring(reply) } end
  replies[k] = reply
end
return replies
