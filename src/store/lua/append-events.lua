-- Records task events. An item is one run's events for one task, in the order the run made them;
-- each event is one XADD to the task's event stream, and the state hash mirrors the last one
-- recorded (one HSET per item), so the hash never disagrees with the log. One call carries the
-- items that a worker's runs produced while its previous call was on its way (a group commit);
-- items are independent, and an item that fails is reported as ERR. An item checks before it
-- writes: its first write is an XADD, which either fails (nothing written) or is followed only by
-- writes that cannot fail (the hash's type was checked by HMGET).
--
-- Fencing and deduplication, so that no event is ever recorded twice or by a stale run:
-- - the caller's lease must be the hash's (an empty lease in the hash is taken by the first writer);
-- - each event carries its run's sequence number: one at or below the hash's `seq` (reset by each
--   claim) was recorded already (a resent batch);
-- - a stage event carries its stage number: one at or below the hash's `step` was recorded by an
--   earlier run (a resumed task skips it);
-- - after a cancel request only CANCELLED is recorded; after a terminal event nothing is.
--
-- KEYS[1]        tasks:commands       commands stream (for the XACK of a terminal event)
-- KEYS[2k]       task:<id>            state hash of item k (k = 1..n)
-- KEYS[2k+1]     task:<id>:events     event stream of item k
-- ARGV[1]        consumer group name
-- ARGV[2]        TTL in seconds set on both task keys by a terminal event
-- ARGV[3..]      the items in KEYS order, each as: lease token, command entry id (XACKed with a
--                terminal event), event count m, then m events, each as its argument count c
--                followed by c arguments:
--   1  run sequence number (1, 2, ... per claim)
--   2  stage number this event records, or '' for an event that is not a stage
--   3  '1' when the event is terminal (COMPLETED, FAILED, CANCELLED), else '0'
--   4  event time, epoch milliseconds
--   5  type: stage | progress | output
--   6  status, or '' to keep the current status
--   7  progress, 0..100, or '' to keep the current progress
--   8.. further event fields as name, value pairs: attempt, error, message, text, json, result.
--       Mirrored into the hash: attempt; error and result of a terminal event; message (set by a
--       progress event, cleared by a progress event without one and by a stage event).
-- Returns  one reply per item, in order:
--          { 'OK', r1, ..., rm }  per event: its event id | 'DUPLICATE' | 'CANCEL' (cancel was
--                                 requested: record CANCELLED instead) | 'TERMINAL' (after the
--                                 item's own terminal event)
--        | { 'FENCED' } | { 'TERMINAL' } | { 'GONE' }   nothing of the item was recorded
--        | { 'ERR', message }     a Redis error (e.g. a key of the wrong type); nothing recorded
local group, ttl = ARGV[1], ARGV[2]
local TERMINAL = { COMPLETED = true, FAILED = true, CANCELLED = true }

-- `p` is the index of the item's lease in ARGV.
local function append(hash, stream, p)
  local caller, command_id, m = ARGV[p], ARGV[p + 1], tonumber(ARGV[p + 2])
  local state = redis.call('HMGET', hash, 'status', 'lease', 'step', 'progress', 'seq', 'cancel_requested', 'message')
  local status, lease, progress, cancel, had_message = state[1], state[2], state[4], state[6], state[7]
  if not status then return { 'GONE' } end
  if TERMINAL[status] then return { 'TERMINAL' } end
  if lease and lease ~= '' and lease ~= caller then return { 'FENCED' } end
  local step, seq = tonumber(state[3] or '0'), tonumber(state[5] or '0')
  progress = progress or '0'

  local replies = { 'OK' }
  local last_id, last_ts, ended, message
  local mirror = {}
  local o = p + 3
  for i = 1, m do
    local c = tonumber(ARGV[o])
    local e_seq, e_step, e_type = tonumber(ARGV[o + 1]), ARGV[o + 2], ARGV[o + 5]
    local e_status, e_progress = ARGV[o + 6], ARGV[o + 7]
    local reply
    if ended then
      reply = 'TERMINAL'
    elseif e_seq <= seq then
      reply = 'DUPLICATE'
    elseif cancel and e_status ~= 'CANCELLED' then
      reply = 'CANCEL'
    elseif e_step ~= '' and tonumber(e_step) <= step then
      seq = e_seq
      reply = 'DUPLICATE'
    else
      if e_status == '' then e_status = status end
      if e_progress == '' then e_progress = progress end
      if c == 7 then
        reply = redis.call('XADD', stream, '*', 'type', e_type, 'status', e_status, 'progress', e_progress, 'ts', ARGV[o + 4])
      else
        local fields = { 'type', e_type, 'status', e_status, 'progress', e_progress, 'ts', ARGV[o + 4] }
        for j = o + 8, o + c, 2 do
          local name, value = ARGV[j], ARGV[j + 1]
          fields[#fields + 1] = name
          fields[#fields + 1] = value
          if name == 'attempt' or ((name == 'error' or name == 'result') and ARGV[o + 3] == '1') then
            mirror[name] = value
          elseif name == 'message' then
            message = value
          end
        end
        reply = redis.call('XADD', stream, '*', unpack(fields))
      end
      if e_type == 'stage' or (e_type == 'progress' and c == 7) then message = false end
      status, progress, seq, last_id, last_ts = e_status, e_progress, e_seq, reply, ARGV[o + 4]
      if e_step ~= '' then step = tonumber(e_step) end
      ended = ARGV[o + 3] == '1'
    end
    replies[i + 1] = reply
    o = o + c + 1
  end

  if last_id then
    local fields = { 'status', status, 'progress', progress, 'last_event_id', last_id, 'updated_at', last_ts,
      'lease', caller, 'step', step, 'seq', seq }
    for name, value in pairs(mirror) do
      fields[#fields + 1] = name
      fields[#fields + 1] = value
    end
    if message then
      fields[#fields + 1] = 'message'
      fields[#fields + 1] = message
    end
    redis.call('HSET', hash, unpack(fields))
    if message == false and had_message then redis.call('HDEL', hash, 'message') end
  end
  if ended then
    redis.call('EXPIRE', hash, ttl)
    redis.call('EXPIRE', stream, ttl)
    if command_id ~= '' then redis.call('XACK', KEYS[1], group, command_id) end
  end
  return replies
end

local replies = {}
local p = 3
for k = 1, (#KEYS - 1) / 2 do
  local ok, reply = pcall(append, KEYS[2 * k], KEYS[2 * k + 1], p)
  if not ok then reply = { 'ERR', type(reply) == 'table' and tostring(reply.err) or tostring(reply) } end
  replies[k] = reply
  -- The next item starts after this one's events, whatever this one did.
  local o = p + 3
  for _ = 1, tonumber(ARGV[p + 2]) do o = o + tonumber(ARGV[o]) + 1 end
  p = o
end
return replies
