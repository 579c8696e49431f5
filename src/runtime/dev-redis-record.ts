import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * What a data directory remembers of its private redis-server, in `<dir>/redis.json`: the port it
 * listens on (kept across runs), and while it runs its pid and the pid of the `npm start` that
 * owns it (stops it on exit).
 */
export interface DevRedisRecord {
  port: number;
  pid?: number;
  owner?: number;
}

export class DevRedisError extends Error {
  constructor(
    readonly code: 'DEV_REDIS_NO_BINARY' | 'DEV_REDIS_IN_USE' | 'DEV_REDIS_NOT_ANSWERING' | 'DEV_REDIS_LOCKED' | 'DEV_REDIS_NO_PORT',
    message: string,
  ) {
    super(message);
    this.name = 'DevRedisError';
  }
}

export const recordPath = (dataDir: string): string => join(dataDir, 'redis.json');

/** The record, or undefined when there is none or it is unreadable (then it is rewritten). */
export function readRecord(dataDir: string): DevRedisRecord | undefined {
  try {
    const value = JSON.parse(readFileSync(recordPath(dataDir), 'utf8')) as Partial<DevRedisRecord>;
    return Number.isInteger(value.port) ? (value as DevRedisRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the record at once (write, then rename): a reader never sees half of it. */
export function writeRecord(dataDir: string, record: DevRedisRecord): void {
  const temp = `${recordPath(dataDir)}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(record)}\n`);
  renameSync(temp, recordPath(dataDir));
}

/** True while process `pid` runs; a zombie (exited, not yet reaped) counts as gone. */
export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; absent off Linux, where kill(0) has to do.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

const LOCK_WAIT_MS = 30_000;

/**
 * Runs `fn` while holding `<dir>/redis.lock`, so that two `npm start`s never decide at once and
 * both start a server on one directory. A lock whose holder is gone is taken over.
 */
export async function withRecordLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dataDir, 'redis.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = lockHolder(lock);
    // 0: just created, its pid not yet written.
    if (holder !== 0 && !alive(holder)) {
      removeFile(lock);
      continue;
    }
    if (Date.now() > deadline) {
      throw new DevRedisError('DEV_REDIS_LOCKED', `${lock} is held by process ${holder}, which has been starting Redis for 30 s`);
    }
    await delay(100);
  }
  try {
    return await fn();
  } finally {
    removeFile(lock);
  }
}

/** The pid in a lock file; undefined when the file is gone. */
function lockHolder(lock: string): number | undefined {
  try {
    return Number(readFileSync(lock, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
