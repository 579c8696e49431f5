-- Records task events, one per item, each atomically: XADD to the event stream and HSET of the
-- state hash, so the hash never disagrees with the last event. One call carries the events that
-- a worker's runs produced in one event-loop turn (a group commit); items are independent, and an
-- item that fails is reported as ERR without undoing the others. Each item is fenced by a lease
-- token and deduplicated by a stage number (and, for RETRYING, by attempt), so a resumed, resent
-- or stale write is never recorded twice. After a cancel request only CANCELLED can be recorded.
--
-- KEYS[1]        tasks:commands       commands stream (for the XACK of a terminal event)
-- KEYS[2k]       task:<id>            state hash of item k (k = 1..n)
-- KEYS[2k+1]     task:<id>:events     event stream of item k
-- ARGV[1]        consumer group name
-- ARGV[2]        TTL in seconds set on both task keys by a terminal event
-- ARGV[3..]      the items in KEYS order, each as its argument count c followed by c arguments:
--   1  lease token of the caller; an empty lease in the hash is taken by the first writer
--   2  stage number this event records, or '' for an event that is not a stage
--   3  '1' when the event is terminal (COMPLETED, FAILED, CANCELLED), else '0'
--   4  command entry id to XACK with a terminal event, or ''
--   5  event time, epoch milliseconds
--   6  status
--   7  progress, 0..100, or '' to keep the current progress
--   8.. further event fields as name, value pairs (error, attempt); `attempt` is mirrored into
--       the hash, `error` too for a terminal event
-- Returns  one reply per item, in order:
--          { 'OK', event id } | { 'DUPLICATE' } | { 'FENCED' } | { 'TERMINAL' } | { 'GONE' }
--        | { 'CANCEL' }         cancel was requested: record CANCELLED instead
--        | { 'ERR', message }   a Redis error (e.g. a key of the wrong type); nothing recorded
local group, ttl = ARGV[1], ARGV[2]

local function append(hash, stream, a)
  local state = redis.call('HMGET', hash, 'status', 'lease', 'step', 'progress', 'attempt', 'cancel_requested')
  local status, lease, step, progress, attempt, cancel = state[1], state[2], state[3], state[4], state[5], state[6]
  if not status then return { 'GONE' } end
  if status == 'COMPLETED' or status == 'FAILED' or status == 'CANCELLED' then return { 'TERMINAL' } end
  if lease and lease ~= '' and lease ~= a[1] then return { 'FENCED' } end
  if cancel and a[6] ~= 'CANCELLED' then return { 'CANCEL' } end
  if a[2] ~= '' and tonumber(a[2]) <= tonumber(step or '0') then return { 'DUPLICATE' } end

  local new_attempt, new_error
  for i = 8, #a, 2 do
    if a[i] == 'attempt' then new_attempt = a[i + 1] end
    if a[i] == 'error' then new_error = a[i + 1] end
  end
  if a[6] == 'RETRYING' and new_attempt and tonumber(new_attempt) <= tonumber(attempt or '1') then
    return { 'DUPLICATE' }
  end

  local event_progress = a[7]
  if event_progress == '' then event_progress = progress or '0' end
  local fields = { 'status', a[6], 'progress', event_progress, 'ts', a[5] }
  for i = 8, #a do fields[#fields + 1] = a[i] end
  local id = redis.call('XADD', stream, '*', unpack(fields))

  local mirror = { 'status', a[6], 'progress', event_progress, 'last_event_id', id, 'updated_at', a[5], 'lease', a[1] }
  if a[2] ~= '' then
    mirror[#mirror + 1] = 'step'
    mirror[#mirror + 1] = a[2]
  end
  if new_attempt then
    mirror[#mirror + 1] = 'attempt'
    mirror[#mirror + 1] = new_attempt
  end
  if a[3] == '1' and new_error then
    mirror[#mirror + 1] = 'error'
    mirror[#mirror + 1] = new_error
  end
  redis.call('HSET', hash, unpack(mirror))

  if a[3] == '1' then
    redis.call('EXPIRE', hash, ttl)
    redis.call('EXPIRE', stream, ttl)
    if a[4] ~= '' then redis.call('XACK', KEYS[1], group, a[4]) end
  end
  return { 'OK', id }
end

local replies = {}
local p = 3
for k = 1, (#KEYS - 1) / 2 do
  local count = tonumber(ARGV[p])
  local a = {}
  for i = 1, count do a[i] = ARGV[p + i] end
  p = p + count + 1
  local ok, reply = pcall(append, KEYS[2 * k], KEYS[2 * k + 1], a)
  if not ok then reply = { 'ERR', type(reply) == 'table' and tostring(reply.err) or tostring(reply) } end
  replies[k] = reply
end
return replies
