import { slotKeys, taskKey } from './keys.js';
import type { Redis } from './redis.js';

/** The concurrency limits a claim applies to a task (0: none). */
export interface SlotLimits {
  /** Running tasks of the type across all workers. */
  limit: number;
  /** Running tasks of the type with the same concurrency key. */
  keyLimit: number;
}

/** claim-tasks.lua's per-item slot arguments: none ('' holders) when `slots` is absent. */
export function slotArgs(slots: ({ type: string } & SlotLimits) | undefined): (string | number)[] {
  if (!slots) return ['', '', '', 0, 0];
  const k = slotKeys(slots.type);
  return [k.holders, k.keyCounts, k.waiting, slots.limit, slots.keyLimit];
}

/**
 * Frees the slots of `type` held by tasks that are gone or ended, and wakes waiting tasks that fit
 * (maintain-slots.lua). Returns the ids of the tasks whose slot was freed.
 */
export async function maintainSlots(redis: Redis, type: string, limits: SlotLimits): Promise<string[]> {
  const k = slotKeys(type);
  const holders = await redis.hkeys(k.holders);
  const waiting = await redis.llen(k.waiting);
  if (holders.length === 0 && waiting === 0) return [];
  const keys = [k.holders, k.keyCounts, k.waiting, ...holders.map(taskKey)];
  return redis.maintainSlots(keys.length, ...keys, limits.limit, limits.keyLimit);
}
