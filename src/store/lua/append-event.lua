-- Records one task event atomically: XADD to the event stream and HSET of the state hash, so
-- the hash never disagrees with the last event. Fenced by a lease token and deduplicated by a
-- stage number (and, for RETRYING, by attempt), so a resumed, resent or stale write is never
-- recorded twice. After a cancel request only CANCELLED can be recorded.
--
-- KEYS[1]  task:<id>            state hash
-- KEYS[2]  task:<id>:events     event stream
-- KEYS[3]  tasks:commands       commands stream (for the XACK of a terminal event)
-- ARGV[1]  lease token of the caller; an empty lease in the hash is taken by the first writer
-- ARGV[2]  stage number this event records, or '' for an event that is not a stage
-- ARGV[3]  '1' when the event is terminal (COMPLETED, FAILED, CANCELLED), else '0'
-- ARGV[4]  TTL in seconds set on both task keys by a terminal event
-- ARGV[5]  consumer group name
-- ARGV[6]  command entry id to XACK with a terminal event, or ''
-- ARGV[7]  event time, epoch milliseconds
-- ARGV[8]  status
-- ARGV[9]  progress, 0..100, or '' to keep the current progress
-- ARGV[10..] further event fields as name, value pairs (error, attempt); `attempt` is mirrored
--          into the hash, `error` too for a terminal event
-- Returns  { 'OK', event id } | { 'DUPLICATE' } | { 'FENCED' } | { 'TERMINAL' } | { 'GONE' }
--        | { 'CANCEL' }  cancel was requested: record CANCELLED instead
local state = redis.call('HMGET', KEYS[1], 'status', 'lease', 'step', 'progress', 'attempt', 'cancel_requested')
local status, lease, step, progress, attempt, cancel = state[1], state[2], state[3], state[4], state[5], state[6]
if not status then return { 'GONE' } end
if status == 'COMPLETED' or status == 'FAILED' or status == 'CANCELLED' then return { 'TERMINAL' } end
if lease and lease ~= '' and lease ~= ARGV[1] then return { 'FENCED' } end
if cancel and ARGV[8] ~= 'CANCELLED' then return { 'CANCEL' } end
if ARGV[2] ~= '' and tonumber(ARGV[2]) <= tonumber(step or '0') then return { 'DUPLICATE' } end

local new_attempt, new_error
for i = 10, #ARGV, 2 do
  if ARGV[i] == 'attempt' then new_attempt = ARGV[i + 1] end
  if ARGV[i] == 'error' then new_error = ARGV[i + 1] end
end
if ARGV[8] == 'RETRYING' and new_attempt and tonumber(new_attempt) <= tonumber(attempt or '1') then
  return { 'DUPLICATE' }
end

local event_progress = ARGV[9]
if event_progress == '' then event_progress = progress or '0' end
local fields = { 'status', ARGV[8], 'progress', event_progress, 'ts', ARGV[7] }
for i = 10, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))

local mirror = { 'status', ARGV[8], 'progress', event_progress, 'last_event_id', id, 'updated_at', ARGV[7], 'lease', ARGV[1] }
if ARGV[2] ~= '' then
  mirror[#mirror + 1] = 'step'
  mirror[#mirror + 1] = ARGV[2]
end
if new_attempt then
  mirror[#mirror + 1] = 'attempt'
  mirror[#mirror + 1] = new_attempt
end
if ARGV[3] == '1' and new_error then
  mirror[#mirror + 1] = 'error'
  mirror[#mirror + 1] = new_error
end
redis.call('HSET', KEYS[1], unpack(mirror))

if ARGV[3] == '1' then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  if ARGV[6] ~= '' then redis.call('XACK', KEYS[3], ARGV[5], ARGV[6]) end
end
return { 'OK', id }
