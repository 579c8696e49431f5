-- Keeps a task type's concurrency slots from leaking: frees the slots of the given holders whose
-- task is gone or has ended (a terminal path always frees its slot; this covers what it could
-- not, e.g. a key deleted by hand), then wakes waiting tasks that fit (also after a limit was
-- raised). A holder that is still live keeps its slot, whatever its worker: a dead worker's task
-- keeps its slot while it is reclaimed and run again.
--
-- KEYS[1]     holders hash of the type (task id -> concurrency key)
-- KEYS[2]     key counts hash of the type (concurrency key -> holders)
-- KEYS[3]     waiting list of the type
-- KEYS[4..n]  task:<id> state hashes of the holders to check
-- ARGV[1]     the type's limit (0: none)
-- ARGV[2]     its per-key limit (0: none)
-- Returns  the ids of the holders whose slot was freed
local limit, key_limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local freed = {}
for i = 4, #KEYS do
  local task_id = task_id_of(KEYS[i])
  local status = redis.call('HGET', KEYS[i], 'status')
  if (not status or is_terminal(status)) and redis.call('HEXISTS', KEYS[1], task_id) == 1 then
    slot_free(KEYS[1], KEYS[2], KEYS[3], limit, key_limit, task_id)
    freed[#freed + 1] = task_id
  end
end
slot_wake(KEYS[1], KEYS[2], KEYS[3], limit, key_limit)
return freed
