import { keyIn, slotKeys, taskKey } from './keys.js';
import { layoutOf, type Partition } from './layout.js';
import type { Redis } from './redis.js';

/** The concurrency limits a claim applies to a task (0: none). */
export interface SlotLimits {
  /** Running tasks of the type across all workers. */
  limit: number;
  /** Running tasks of the type with the same concurrency key. */
  keyLimit: number;
}

/** claim-tasks.lua's per-item slot arguments: none ('' holders) when `slots` is absent. */
export function slotArgs(p: Partition, slots: ({ type: string } & SlotLimits) | undefined): (string | number)[] {
  if (!slots) return ['', '', '', 0, 0];
  const k = slotKeys(slots.type);
  return [keyIn(p, k.holders), keyIn(p, k.keyCounts), keyIn(p, k.waiting), slots.limit, slots.keyLimit];
}

/**
 * Frees the slots of `type` held by tasks that are gone or ended, and wakes waiting tasks that fit
 * (maintain-slots.lua). Returns the ids of the tasks whose slot was freed.
 */
export async function maintainSlots(redis: Redis, type: string, limits: SlotLimits): Promise<string[]> {
  const freed = await Promise.all(layoutOf(redis).partitions.map((p) => maintainIn(redis, p, type, limits)));
  return freed.flat();
}

async function maintainIn(redis: Redis, p: Partition, type: string, limits: SlotLimits): Promise<string[]> {
  const k = slotKeys(type);
  const [holdersKey, keyCountsKey, waitingKey] = [keyIn(p, k.holders), keyIn(p, k.keyCounts), keyIn(p, k.waiting)];
  const holders = await redis.hkeys(holdersKey);
  const waiting = await redis.llen(waitingKey);
  if (holders.length === 0 && waiting === 0) return [];
  const keys = [holdersKey, keyCountsKey, waitingKey, ...holders.map((id) => keyIn(p, taskKey(id)))];
  return redis.maintainSlots(keys.length, ...keys, limits.limit, limits.keyLimit);
}
