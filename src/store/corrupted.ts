/**
 * A task whose keys hold the wrong type (e.g. `task:<id>:events` overwritten with a string): bad
 * data, which no retry heals. Every store call about one task that meets Redis's WRONGTYPE throws
 * this instead, naming the task; the error table maps it to TASK_CORRUPTED.
 */
export class TaskCorrupted extends Error {
  constructor(
    readonly taskId: string,
    detail: string,
  ) {
    super(`task ${taskId} is corrupted: ${detail}`);
    this.name = 'TaskCorrupted';
  }
}

/**
 * A watched task whose keys are gone while it had not ended: deleted, or lost by a Redis that
 * restarted without its data. The error table maps it to TASK_NOT_FOUND, as a new watch of it gets.
 */
export class TaskGone extends Error {
  constructor(readonly taskId: string) {
    super(`task ${taskId} not found: its keys are gone`);
    this.name = 'TaskGone';
  }
}

/**
 * A key that belongs to no one task holds the wrong type: the task list's index of a tag, or a
 * feed (e.g. `tasks:tag:<tag>` overwritten with a string). The error table maps it to DATA_CORRUPTED.
 */
export class KeyCorrupted extends Error {
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`${key} is corrupted: ${detail}`);
    this.name = 'KeyCorrupted';
  }
}

/** Rethrows what `call` rejects with, as KeyCorrupted when it is a WRONGTYPE about `key`. */
export async function aboutKey<T>(key: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw keyCorruptedOr(err, key);
  }
}

/** `err` as KeyCorrupted when it is a WRONGTYPE (about `key`), else `err` unchanged. */
export function keyCorruptedOr(err: unknown, key: string): unknown {
  return isWrongType(err) ? new KeyCorrupted(key, wrongTypeDetail(err, key)) : err;
}

/** True for Redis's WRONGTYPE error, raw or from one of our scripts' checks. */
export function isWrongType(err: unknown): err is Error {
  return err instanceof Error && /\bWRONGTYPE\b/.test(err.message);
}

/** Redis's own WRONGTYPE message, which names no key. */
const RAW_WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';

/** The WRONGTYPE part of `err`'s message; Redis's own, which names no key, names `key` when given. */
function wrongTypeDetail(err: Error, key: string | undefined): string {
  const detail = err.message.replace(/^.*?(WRONGTYPE)/, '$1');
  return key !== undefined && detail === RAW_WRONGTYPE ? `WRONGTYPE ${key} holds the wrong kind of value` : detail;
}

/**
 * `err` as TaskCorrupted when it is a WRONGTYPE about `taskId`'s keys, else `err` unchanged. `key`
 * names the key for Redis's own message (our scripts' checks name it themselves).
 */
export function corruptedOr(err: unknown, taskId: string, key?: string): unknown {
  if (err instanceof TaskCorrupted || !isWrongType(err)) return err;
  const detail = wrongTypeDetail(err, key);
  // A script's check names the key: one that is not the task's own (a tag's index) is no task's corruption.
  const named = /^WRONGTYPE (\S+) holds/.exec(detail)?.[1];
  if (named !== undefined && !named.includes(taskId)) return new KeyCorrupted(named, detail);
  return new TaskCorrupted(taskId, detail);
}

/** Rethrows what `call` rejects with, as TaskCorrupted when it is a WRONGTYPE (see corruptedOr). */
export async function aboutTask<T>(taskId: string, call: Promise<T>, key?: string): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw corruptedOr(err, taskId, key);
  }
}
