-- Shared by every script: src/store/redis.ts prepends this file to each one when it loads it
-- (Redis has no Lua `require`). Defines no key access of its own.

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

