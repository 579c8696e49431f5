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
-- Returns     flat list: command id, 'KEPT' | 'LOST' | 'ENDED' | 'CANCEL', ...
local out = {}
for i = 2, #KEYS do
  local command_id, lease = ARGV[2 * i], ARGV[2 * i + 1]
  local state = redis.call('HMGET', KEYS[i], 'status', 'lease', 'cancel_requested')
  local verdict
  if not state[1] or state[1] == 'COMPLETED' or state[1] == 'FAILED' or state[1] == 'CANCELLED' then
    verdict = 'ENDED'
  elseif lease == '' then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], command_id, command_id, 1)[1]
    if pending and pending[2] == ARGV[2] then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, command_id, 'IDLE', ARGV[3], 'JUSTID')
      verdict = 'KEPT'
    else
      verdict = 'LOST'
    end
  elseif state[2] ~= lease then
    verdict = 'LOST'
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, command_id, 'IDLE', ARGV[3], 'JUSTID')
    if state[3] then verdict = 'CANCEL' else verdict = 'KEPT' end
  end
  out[#out + 1] = command_id
  out[#out + 1] = verdict
end
return out
