-- Creates tasks, each in one atomic step: its state hash, its first event, its start command (or,
-- for a scheduled start, its entry in the scheduled set), its entry in the recent-tasks index
-- (and in the index of each of its tags) and its first entry in the feeds (feed_append). There is
-- never a command without its task, nor a task without its command or schedule. One call carries
-- the starts a gateway received while its previous call was on its way (a group commit); items
-- are independent, and run in order, so a later item sees the idempotency key an earlier one set.
--
-- KEYS[1]      tasks:commands       commands stream (of normal priority; type check only)
-- KEYS[2]      tasks:index          sorted set of task ids by creation time (ms)
-- then, per item k in order:
--   task:<id>                       state hash
--   task:<id>:events                event stream
--   tasks:idem:<scope>:<key>        only when the item has an idempotency fingerprint
--   tasks:tag:<tag>                 one per tag of the item, in the order of its tags
-- ARGV[1]      TASK_TTL_S: the index and each tag index expire after it. Index entries older than
--              it are pruned by the workers' maintenance (pruneIndex), off this hot path; tag
--              index entries older than it are pruned here, when the tag is next written.
-- ARGV[12k-10..12k+1]  item k: task id, task type, params (JSON text), now (epoch milliseconds),
--              tags (JSON array of strings, '' for none), idempotency fingerprint ('' for none),
--              idempotency key TTL (seconds), priority (high | normal | low), its commands stream
--              (a key name, from keys.ts), due time (epoch ms; '' for now), the scheduled set
--              (tasks:scheduled, a key name), concurrency key ('' none; a field of the command
--              and the hash)
-- A task due now: status PENDING, its command XADDed to its priority's stream. A scheduled one:
-- status SCHEDULED with `run_at` (event and hash), its id in the scheduled set scored by its due
-- time, no command (promote-scheduled.lua adds it when due). The hash keeps `priority` and
-- `queue` (its commands stream: scripts XACK and re-enqueue there).
-- Returns  one reply per item, in order: { 'OK', first event id, command id ('' when scheduled) }
--          | { 'REPLAY', task id }  the idempotency key is held with this fingerprint: nothing written
--          | { 'REUSED', task id }  the idempotency key is held with another fingerprint: nothing written
--          | { 'ERR', message };
--          or the error 'WRONGTYPE ...' for the whole call when KEYS[1] or KEYS[2] is of the wrong
--          type (nothing written).
-- The caller generates task ids (UUID v4), so an item's task keys are new: neither existence nor
-- type check. The shared keys' types are checked once per call, and an item's tag keys before its
-- first write, so that an item is never left half written.
local ITEM_ARGS = 12

local bad = wrong_type(KEYS[1], 'stream', KEYS[2], 'zset')
if bad then return redis.error_reply(bad) end
local ttl_s = tonumber(ARGV[1])

-- k: the item's first key; a: its first argument; tags: its tags, decoded.
local function start(k, a, tags)
  local hash, events = KEYS[k], KEYS[k + 1]
  local task_id, task_type, params, now, tags_json, fp, idem_ttl, priority, stream, run_at, scheduled, concurrency_key =
    unpack(ARGV, a, a + ITEM_ARGS - 1)
  local first_tag = k + 2
  if fp ~= '' then
    first_tag = k + 3
    local held = redis.pcall('GET', KEYS[k + 2])
    -- A key of another type: reported as it names itself (not as this task's corruption).
    if type(held) == 'table' and held.err then return { 'ERR', wrong_type(KEYS[k + 2], 'string') or held.err } end
    if held then
      local held_fp, held_id = string.match(held, '^(.*):([^:]*)$')
      return { held_fp == fp and 'REPLAY' or 'REUSED', held_id }
    end
  end
  -- The scheduled set needs no check: a scheduled item's first write is its ZADD.
  local checks = {}
  for i = 1, #tags do
    checks[#checks + 1] = KEYS[first_tag + i - 1]
    checks[#checks + 1] = 'zset'
  end
  local wrong = wrong_type(unpack(checks))
  if wrong then return { 'ERR', wrong } end

  local status, command_id, event_id = 'PENDING', '', nil
  if run_at == '' then
    local command = { 'task_id', task_id, 'type', task_type, 'params', params }
    if concurrency_key ~= '' then
      command[#command + 1] = 'concurrency_key'
      command[#command + 1] = concurrency_key
    end
    command_id = redis.call('XADD', stream, '*', unpack(command))
    event_id = redis.call('XADD', events, '*', 'type', 'stage', 'status', status, 'progress', '0', 'ts', now)
  else
    status = 'SCHEDULED'
    redis.call('ZADD', scheduled, run_at, task_id)
    event_id = redis.call('XADD', events, '*', 'type', 'stage', 'status', status, 'progress', '0', 'ts', now, 'run_at', run_at)
  end
  local fields = {
    'status', status, 'progress', '0', 'last_event_id', event_id,
    'created_at', now, 'updated_at', now,
    'type', task_type, 'params', params, 'step', '0', 'lease', '',
    'priority', priority, 'queue', stream,
    -- Kept so that cancelling the task before it starts can ack its command.
    'command_id', command_id,
  }
  local function field(name, value)
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  if tags_json ~= '' then field('tags', tags_json) end
  if run_at ~= '' then field('run_at', run_at) end
  if concurrency_key ~= '' then field('concurrency_key', concurrency_key) end
  feed_append(feed_task(hash, task_type, tags_json ~= '' and tags_json or nil, nil), status, '0', now, false)
  field('feed_at', now)
  redis.call('HSET', hash, unpack(fields))
  redis.call('ZADD', KEYS[2], now, task_id)
  for i = 1, #tags do
    local tag_key = KEYS[first_tag + i - 1]
    redis.call('ZADD', tag_key, now, task_id)
    redis.call('ZREMRANGEBYSCORE', tag_key, '-inf', '(' .. (tonumber(now) - ttl_s * 1000))
    redis.call('EXPIRE', tag_key, ttl_s)
  end
  if fp ~= '' then redis.call('SET', KEYS[k + 2], fp .. ':' .. task_id, 'EX', idem_ttl) end
  return { 'OK', event_id, command_id }
end

local replies = {}
local k, a = 3, 2
while a <= #ARGV do
  local tags = ARGV[a + 4] == '' and {} or cjson.decode(ARGV[a + 4])
  local ok, reply = pcall(start, k, a, tags)
  if not ok then reply = { 'ERR', type(reply) == 'table' and tostring(reply.err) or tostring(reply) } end
  replies[#replies + 1] = reply
  k = k + 2 + (ARGV[a + 5] == '' and 0 or 1) + #tags
  a = a + ITEM_ARGS
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
feed_trim()
return replies
