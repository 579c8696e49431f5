-- Records task events. An item is one run's events for one task, in the order the run made them;
-- each event is one XADD to the task's event stream, and the state hash mirrors the last one
-- recorded (one HSET per item), so the hash never disagrees with the log. One call carries the
-- items that a worker's runs produced while its previous call was on its way (a group commit);
-- items are independent, and an item that fails is reported as ERR. An item checks before it
-- writes: HMGET fails on a hash of the wrong type, and its first write is an XADD, which fails on
-- a stream of the wrong type with nothing written; after it, no write can fail (a type check per
-- item would cost two commands on the hot path for nothing).
--
-- Fencing and deduplication, so that no event is ever recorded twice or by a stale run:
-- - the caller's lease must be the hash's (an empty lease in the hash is taken by the first writer);
-- - the events of a run are numbered 1, 2, ... from its claim (`seq`, reset by each claim), and an
--   item's events are consecutive: one at or below the hash's `seq` was recorded already (a resent
--   item after a lost reply);
-- - a stage event carries its stage number: one at or below the hash's `step` was recorded by an
--   earlier run (a resumed task skips it);
-- - after a cancel request only CANCELLED is recorded; after a terminal event nothing is;
-- - an item whose first event is numbered past the hash's `seq` + 1 follows events of its run
--   that the log has lost (Redis came back with older data: a restart from an older snapshot, a
--   failover to a replica that lagged): nothing is recorded, so that no stage goes missing; the
--   run stops, and the task is taken over from its last recorded stage. With a cancel requested,
--   numbers answered CANCEL were never recorded: holes are expected there.
-- A terminal event frees the task's concurrency slot (prelude release_slot), which may queue the
-- command of a task that waited for one.
--
-- KEYS[1]        tasks:commands       commands stream (for the XACK of a terminal event) of the
--                                     tasks whose hash names none (`queue`: their priority's stream)
-- KEYS[2k]       task:<id>            state hash of item k (k = 1..n)
-- KEYS[2k+1]     task:<id>:events     event stream of item k
-- ARGV[1]        consumer group name
-- ARGV[2]        TTL in seconds set on both task keys by a terminal event
-- ARGV[3..]      the items in KEYS order, each as: lease token, command entry id (XACKed with a
--                terminal event), sequence number of its first event, event count m, then the m
--                events, each as its kind and time (epoch ms) followed by the kind's arguments:
--   text | json  value                 an output chunk (text, or a record as JSON text)
--   progress     percent, message      a progress update ('' message: none)
--   stage        status, progress ('' keeps the current one), stage number ('' for an event
--                that is not a stage: RETRYING, terminal ones), '1' when terminal else '0',
--                a count c of extra fields, then c name, value pairs (attempt, error, result)
-- Each stage event and each progress event is also appended to the feeds (feed_append, progress
-- ones throttled), right after its own XADD; the hash keeps the time of the task's latest feed
-- entry (`feed_at`), and the feeds are trimmed once, after the last item (feed_trim).
-- Output and progress events take the current status (and output the current progress). The
-- hash mirrors: status, progress, last_event_id, updated_at, lease, step, seq; attempt; error and
-- result of a terminal event; message (set by a progress event, cleared by one without and by a
-- stage event).
-- Returns  one reply per item, in order:
--          { 'OK', r1, ..., rm }  per event: its event id | 'DUPLICATE' | 'CANCEL' (cancel was
--                                 requested: record CANCELLED instead) | 'TERMINAL' (after the
--                                 item's own terminal event)
--        | { 'FENCED' } | { 'TERMINAL' } | { 'GONE' } | { 'GAP' }   nothing of the item was recorded
--        | { 'ERR', message }     a Redis error, e.g. WRONGTYPE (bad data: retrying cannot help);
--                                 nothing recorded
local group, ttl = ARGV[1], ARGV[2]

-- The index after the event at `o`.
local function skip(o)
  local kind = ARGV[o]
  if kind == 'text' or kind == 'json' then return o + 3 end
  if kind == 'progress' then return o + 4 end
  return o + 7 + 2 * tonumber(ARGV[o + 6])
end

-- `p` is the index of the item's lease in ARGV; returns the item's reply.
local function append(hash, stream, p)
  local caller, command_id, first, m = ARGV[p], ARGV[p + 1], tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3])
  local state = redis.call('HMGET', hash, 'status', 'lease', 'step', 'progress', 'seq', 'cancel_requested', 'message', 'queue',
    'slots', 'type', 'tags', 'feed_at')
  local status, lease, progress, cancel, had_message = state[1], state[2], state[4], state[6], state[7]
  if not status then return { 'GONE' } end
  if is_terminal(status) then return { 'TERMINAL' } end
  if lease and lease ~= '' and lease ~= caller then return { 'FENCED' } end
  local step, seq = tonumber(state[3] or '0'), tonumber(state[5] or '0')
  if first > seq + 1 and not cancel then return { 'GAP' } end
  progress = progress or '0'

  local feed = feed_task(hash, state[10], state[11], state[12])
  local replies = { 'OK' }
  local last_id, last_ts, ended, message
  local mirror = {}
  local o = p + 4
  for i = 1, m do
    local kind, ts, e_seq = ARGV[o], ARGV[o + 1], first + i - 1
    local reply
    if ended then
      reply = 'TERMINAL'
    elseif e_seq <= seq then
      reply = 'DUPLICATE'
    elseif cancel and not (kind == 'stage' and ARGV[o + 2] == 'CANCELLED') then
      reply = 'CANCEL'
    elseif kind == 'text' or kind == 'json' then
      reply = redis.call('XADD', stream, '*', 'type', 'output', 'status', status, 'progress', progress, 'ts', ts, kind, ARGV[o + 2])
    elseif kind == 'progress' then
      progress = ARGV[o + 2]
      if ARGV[o + 3] == '' then
        reply = redis.call('XADD', stream, '*', 'type', 'progress', 'status', status, 'progress', progress, 'ts', ts)
        message = false
      else
        message = ARGV[o + 3]
        reply = redis.call('XADD', stream, '*', 'type', 'progress', 'status', status, 'progress', progress, 'ts', ts, 'message', message)
      end
      feed_append(feed, status, progress, ts, true)
    else
      local e_step, terminal, c = ARGV[o + 4], ARGV[o + 5] == '1', tonumber(ARGV[o + 6])
      if e_step ~= '' and tonumber(e_step) <= step then
        reply = 'DUPLICATE'
      else
        status = ARGV[o + 2]
        if ARGV[o + 3] ~= '' then progress = ARGV[o + 3] end
        if c == 0 then
          reply = redis.call('XADD', stream, '*', 'type', 'stage', 'status', status, 'progress', progress, 'ts', ts)
        else
          local fields = { 'type', 'stage', 'status', status, 'progress', progress, 'ts', ts }
          for j = o + 7, o + 5 + 2 * c, 2 do
            local name, value = ARGV[j], ARGV[j + 1]
            fields[#fields + 1] = name
            fields[#fields + 1] = value
            if name == 'attempt' or terminal then mirror[name] = value end
          end
          reply = redis.call('XADD', stream, '*', unpack(fields))
        end
        feed_append(feed, status, progress, ts, false)
        if e_step ~= '' then step = tonumber(e_step) end
        message = false
        ended = terminal
      end
    end
    if reply ~= 'DUPLICATE' and reply ~= 'CANCEL' and reply ~= 'TERMINAL' then last_id, last_ts = reply, ts end
    if reply ~= 'CANCEL' and reply ~= 'TERMINAL' and e_seq > seq then seq = e_seq end
    replies[i + 1] = reply
    o = skip(o)
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
    if feed.at ~= state[12] then
      fields[#fields + 1] = 'feed_at'
      fields[#fields + 1] = feed.at
    end
    redis.call('HSET', hash, unpack(fields))
    if message == false and had_message then redis.call('HDEL', hash, 'message') end
  end
  if ended then
    if state[9] then release_slot(hash) end
    redis.call('EXPIRE', hash, ttl)
    redis.call('EXPIRE', stream, ttl)
    if command_id ~= '' then redis.call('XACK', state[8] or KEYS[1], group, command_id) end
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
  local o = p + 4
  for _ = 1, tonumber(ARGV[p + 3]) do o = skip(o) end
  p = o
end
feed_trim()
return replies
