-- Keeps a worker's running commands from being reclaimed, but only those whose task it still
-- leases: a paused worker that lost a task must not pull its command back. Also reports what a
-- run must learn of (lease lost, task ended, cancel requested) in case a message was missed.
--
-- KEYS[1]     tasks:commands   commands stream
-- KEYS[2..n]  task:<id>        state hash of each command, in the order of the pairs below
-- ARGV[1]     consumer group name
-- ARGV[2]     consumer name of the caller
-- ARGV[3]     idle time in ms to set on kept commands: 0 for a heartbeat, CLAIM_IDLE_MS to
--             release them to other workers at once (shutdown)
-- ARGV[4..]   command entry id, lease token: one pair per KEYS[2..]; an empty lease token is a
--             command whose claim has not been recorded yet (e.g. Redis refuses writes): it is
--             kept while this consumer holds it in the pending list
-- Returns     flat list: command id, 'KEPT' | 'LOST' | 'ENDED' | 'GONE' | 'CANCEL' | 'CORRUPTED', ...
--             (GONE: the task's hash is gone; CORRUPTED: it is of the wrong type, and its command
--             is left as it is)
-- Every hash's type is checked before the first XCLAIM, so that one corrupted task can neither
-- fail the others' heartbeats nor leave the call half done.
local corrupted = {}
for i = 2, #KEYS do corrupted[i] = wrong_type(KEYS[i], 'hash') ~= nil end

local function keep(command_id)
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, command_id, 'IDLE', ARGV[3], 'JUSTID')
end

local function verdict(i, command_id, lease)
  if corrupted[i] then return 'CORRUPTED' end
  local state = redis.call('HMGET', KEYS[i], 'status', 'lease', 'cancel_requested')
  if not state[1] then return 'GONE' end
  if is_terminal(state[1]) then return 'ENDED' end
  if lease == '' then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], command_id, command_id, 1)[1]
    if not pending or pending[2] ~= ARGV[2] then return 'LOST' end
    keep(command_id)
    return 'KEPT'
  end
  if state[2] ~= lease then return 'LOST' end
  keep(command_id)
  if state[3] then return 'CANCEL' end
  return 'KEPT'
end

local out = {}
for i = 2, #KEYS do
  local command_id = ARGV[2 * i]
  out[#out + 1] = command_id
  out[#out + 1] = verdict(i, command_id, ARGV[2 * i + 1])
end
return out
