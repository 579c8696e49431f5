-- Shared by every script: src/store/redis.ts prepends this file to each one when it loads it
-- (Redis has no Lua `require`), after the generated feed constants. The feed and slot helpers write keys.

-- True for the statuses after which a task records nothing more.
local function is_terminal(status)
  return status == 'COMPLETED' or status == 'FAILED' or status == 'CANCELLED'
end

-- Checks before a script writes, so that a write cannot fail half way (Redis does not roll back a
-- script that errors): `...` is key, wanted type pairs ('hash', 'stream', 'zset', ...). Returns
-- nil when each key is absent or of its wanted type, else the WRONGTYPE message that names the
-- first key that is not.
local function wrong_type(...)
  local checks = { ... }
  for i = 1, #checks, 2 do
    local key, wanted = checks[i], checks[i + 1]
    local actual = redis.call('TYPE', key)['ok']
    if actual ~= 'none' and actual ~= wanted then
      return 'WRONGTYPE ' .. key .. ' holds a ' .. actual .. ', not a ' .. wanted
    end
  end
  return nil
end

-- The state hash of a task by its id, as src/store/keys.ts names it (taskKey, TASK_KEY_PREFIX):
-- the one place in Lua that derives a key name, for the waiting tasks a released slot wakes.
local function task_hash(task_id)
  return TASK_KEY_PREFIX .. task_id
end
local function task_id_of(hash)
  return string.sub(hash, #TASK_KEY_PREFIX + 1)
end

-- Queues a start command for the task of `hash` on its priority's stream (the hash's `queue`)
-- from the hash's type, params and concurrency key, and records its id in the hash. Returns the
-- command id. Shared by promote-scheduled.lua and slot wake-ups.
local function queue_command(hash, task_id)
  local s = redis.call('HMGET', hash, 'queue', 'type', 'params', 'concurrency_key')
  local fields = { 'task_id', task_id, 'type', s[2], 'params', s[3] }
  if s[4] and s[4] ~= '' then
    fields[#fields + 1] = 'concurrency_key'
    fields[#fields + 1] = s[4]
  end
  local command_id = redis.call('XADD', s[1], '*', unpack(fields))
  redis.call('HSET', hash, 'command_id', command_id)
  return command_id
end

-- Concurrency slots of a task type (see claim-tasks.lua): `holders` (hash: task id -> its
-- concurrency key or ''), `key_counts` (hash: concurrency key -> holders with it) and `waiting`
-- (list of the ids of tasks waiting for a slot, oldest first). A claimed task of a limited type
-- keeps their names and its limits in its hash (slots, slot_keys, slot_waiting, slot_limit,
-- slot_key_limit; 0 means no limit).

-- Whether a task with concurrency key `key` ('' none) fits now.
local function slot_fits(holders, key_counts, limit, key_limit, key)
  if limit > 0 and redis.call('HLEN', holders) >= limit then return false end
  if key ~= '' and key_limit > 0 and tonumber(redis.call('HGET', key_counts, key) or '0') >= key_limit then return false end
  return true
end

local function slot_take(holders, key_counts, task_id, key)
  if redis.call('HSETNX', holders, task_id, key) == 1 and key ~= '' then redis.call('HINCRBY', key_counts, key, 1) end
end

-- Gives freed slots to waiting tasks, oldest first (at most the first 100 looked at per call):
-- a task that fits takes its slot and its command is queued again; a task that is gone, ended or
-- no longer waiting leaves the list. Keeps the invariant: after a release, no waiting task fits.
-- Each waiting task is judged by its own per-key limit (its hash's `slot_key_limit`, set by its
-- claim); `key_limit` stands in only where its hash has none.
local function slot_wake(holders, key_counts, waiting, limit, key_limit)
  for _, id in ipairs(redis.call('LRANGE', waiting, 0, 99)) do
    if limit > 0 and redis.call('HLEN', holders) >= limit then return end
    local hash = task_hash(id)
    local s = redis.call('HMGET', hash, 'status', 'waiting_for_slot', 'concurrency_key', 'slot_key_limit')
    if not s[1] or is_terminal(s[1]) or not s[2] then
      redis.call('LREM', waiting, 1, id)
    elseif slot_fits(holders, key_counts, limit, tonumber(s[4]) or key_limit, s[3] or '') then
      redis.call('LREM', waiting, 1, id)
      slot_take(holders, key_counts, id, s[3] or '')
      redis.call('HDEL', hash, 'waiting_for_slot')
      queue_command(hash, id)
    end
  end
end

-- Frees the slot `task_id` holds in `holders` (if any), then wakes waiting tasks.
local function slot_free(holders, key_counts, waiting, limit, key_limit, task_id)
  local key = redis.call('HGET', holders, task_id)
  if key then
    redis.call('HDEL', holders, task_id)
    if key ~= '' and redis.call('HINCRBY', key_counts, key, -1) <= 0 then redis.call('HDEL', key_counts, key) end
  end
  slot_wake(holders, key_counts, waiting, limit, key_limit)
end

-- A task ends (or is cancelled while waiting): it leaves the waiting list and frees its slot,
-- which may start waiting tasks. Nothing for a task of an unlimited type. Every path to a
-- terminal status calls this once, after recording it.
local function release_slot(hash)
  local s = redis.call('HMGET', hash, 'slots', 'slot_keys', 'slot_waiting', 'slot_limit', 'slot_key_limit', 'waiting_for_slot')
  if not s[1] then return end
  local task_id = task_id_of(hash)
  if s[6] then
    redis.call('LREM', s[3], 1, task_id)
    redis.call('HDEL', hash, 'waiting_for_slot')
  end
  slot_free(s[1], s[2], s[3], tonumber(s[4]), tonumber(s[5]), task_id)
end

-- Feeds appended to by this script call, each trimmed once by feed_trim.
local FEED_TRIM = 100
local feed_touched = {}

-- Appends `fields` to the feed `key`. A key of the wrong type (bad data) is skipped (redis.pcall):
-- the feeds are a view of the task logs and never stop a task's own writes; their readers meet
-- the WRONGTYPE instead.
local function feed_add(key, fields)
  local added = redis.pcall('XADD', key, '*', unpack(fields))
  if type(added) == 'table' and added.err then return end
  feed_touched[key] = true
end

-- Trims each feed this call appended to: one holding more than FEED_MAXLEN + FEED_TRIM entries
-- loses its oldest down to FEED_MAXLEN, so between script calls a feed holds FEED_MAXLEN to
-- FEED_MAXLEN + FEED_TRIM entries. Trimmed with XDEL, not MAXLEN: XDEL records the greatest id it
-- removed (XINFO STREAM max-deleted-entry-id), which is how a reader tells exactly whether entries
-- after its cursor are gone (src/store/feed-store.ts). A tag's feed expires FEED_TAG_TTL_S after
-- its latest entry (a cursor of an expired feed is then told to reload, as any too-old cursor).
-- Every script that calls feed_append calls this once, after its last one.
local function feed_trim()
  for key in pairs(feed_touched) do
    if key ~= FEED_STREAM then redis.call('EXPIRE', key, FEED_TAG_TTL_S) end
    local over = redis.call('XLEN', key) - FEED_MAXLEN
    if over > FEED_TRIM then
      -- In slices: unpack has a limit on how many values it returns.
      while over > 0 do
        local ids = {}
        for i, entry in ipairs(redis.call('XRANGE', key, '-', '+', 'COUNT', math.min(over, 1000))) do ids[i] = entry[1] end
        redis.call('XDEL', key, unpack(ids))
        over = over - #ids
      end
    end
  end
  feed_touched = {}
end

-- A task as the feeds name it: its id (from its hash key `hash`), type, tags (the hash's `tags`:
-- JSON text, or nil when none) and `at`, the time of its latest feed entry (the hash's `feed_at`;
-- nil before the first).
local function feed_task(hash, task_type, tags_json, at)
  return { id = task_id_of(hash), type = task_type or '', tags = tags_json, at = at }
end

-- Appends a change of the task `f` (feed_task) to the feeds (README "Feed of task changes"): one
-- entry { task_id, type, status, progress, ts[, tags] } to FEED_STREAM and to the feed of each of
-- its tags. Call it right after the XADD of the task's own event, in the same script, so the feeds
-- never disagree with the task logs. `throttled` marks a progress change: it is left out when the
-- task's previous feed entry (f.at) is less than FEED_PROGRESS_MS older by event time; status
-- changes never are. Sets f.at when it appends: the caller stores it as the hash's `feed_at`.
-- The FEED_* and TASK_KEY_PREFIX constants are generated by src/store/redis.ts.
local function feed_append(f, status, progress, ts, throttled)
  if throttled and f.at and tonumber(ts) - tonumber(f.at) < FEED_PROGRESS_MS then return end
  f.at = ts
  local fields = { 'task_id', f.id, 'type', f.type, 'status', status, 'progress', progress, 'ts', ts }
  local tags = {}
  if f.tags then
    fields[#fields + 1] = 'tags'
    fields[#fields + 1] = f.tags
    local ok, decoded = pcall(cjson.decode, f.tags)
    if ok and type(decoded) == 'table' then tags = decoded end
  end
  feed_add(FEED_STREAM, fields)
  for _, tag in ipairs(tags) do
    if type(tag) == 'string' then feed_add(FEED_TAG_PREFIX .. tag, fields) end
  end
end

-- For a script that records one status change of one task: feed_append with the task read from
-- its hash, its `feed_at` stored, and feed_trim.
local function feed_append_now(hash, status, progress, ts)
  local s = redis.call('HMGET', hash, 'type', 'tags')
  feed_append(feed_task(hash, s[1], s[2], nil), status, progress, ts, false)
  redis.call('HSET', hash, 'feed_at', ts)
  feed_trim()
end
