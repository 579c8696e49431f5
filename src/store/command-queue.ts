import { ensureGroup, pruneConsumers } from './consumer-group.js';
import { COMMANDS_STREAM, WORKER_GROUP, taskKey } from './keys.js';
import { pruneIndex } from './task-index.js';
import type { Redis } from './redis.js';

/** A command entry of `tasks:commands`. */
export interface CommandEntry {
  id: string;
  fields: Record<string, string>;
}

/** What a heartbeat found for a command (heartbeat.lua). */
export type Verdict = 'KEPT' | 'LOST' | 'ENDED' | 'CANCEL' | 'CORRUPTED';

type RawEntry = [id: string, fields: string[] | null];

/**
 * A worker's side of the commands stream, as the consumer `consumer` of the `workers` group:
 * reading, keeping, handing back and reclaiming commands, taking over those of dead workers, and
 * the stream's maintenance. Claims and events go through TaskWrites.
 */
export class CommandQueue {
  constructor(
    private readonly redis: Redis,
    readonly consumer: string,
  ) {}

  /** Creates the `workers` group (and the stream) from the first entry; an existing group is fine. */
  ensureGroup(): Promise<void> {
    return ensureGroup(this.redis);
  }

  /** Up to `count` new commands, waiting at most `blockMs` on `reader` (a blocking reader's connection). */
  async read(reader: Redis, count: number, blockMs: number): Promise<CommandEntry[]> {
    const reply = (await reader.xreadgroup(
      'GROUP', WORKER_GROUP, this.consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', COMMANDS_STREAM, '>',
    )) as [string, RawEntry[]][] | null;
    return entries((reply ?? []).flatMap(([, e]) => e));
  }

  /**
   * Sets the idle time of the commands we run to `idleMs` (0: a heartbeat; CLAIM_IDLE_MS: hand
   * them to other workers now), for those whose task we still lease (an empty lease: a claim not
   * recorded yet, kept while we hold the command). Returns each command's verdict.
   */
  async heartbeat(runs: { commandId: string; taskId: string; lease: string }[], idleMs: number): Promise<Map<string, Verdict>> {
    const keys = [COMMANDS_STREAM, ...runs.map((r) => taskKey(r.taskId))];
    const args = [WORKER_GROUP, this.consumer, idleMs, ...runs.flatMap((r) => [r.commandId, r.lease])];
    const reply = await this.redis.heartbeat(keys.length, ...keys, ...args);
    const out = new Map<string, Verdict>();
    for (let i = 0; i + 1 < reply.length; i += 2) out.set(reply[i]!, reply[i + 1] as Verdict);
    return out;
  }

  /** Commands read but never started: idle for `idleMs` at once, so another worker takes them now. */
  async handBack(ids: string[], idleMs: number): Promise<void> {
    if (ids.length > 0) await this.redis.xclaim(COMMANDS_STREAM, WORKER_GROUP, this.consumer, 0, ...ids, 'IDLE', idleMs, 'JUSTID');
  }

  /**
   * Takes up to `count` commands idle longer than `minIdleMs` (their worker died or stalled),
   * scanning the pending list from `cursor`. `deleted`: pending ids whose entry was trimmed away.
   */
  async reclaim(minIdleMs: number, cursor: string, count: number): Promise<{ next: string; entries: CommandEntry[]; deleted: string[] }> {
    const [next, raw, deleted] = (await this.redis.xautoclaim(
      COMMANDS_STREAM, WORKER_GROUP, this.consumer, minIdleMs, cursor, 'COUNT', count,
    )) as [string, RawEntry[], string[]];
    return { next, entries: entries(raw), deleted };
  }

  /**
   * Takes at once up to `count` commands held by consumers that `isGone` says are dead (e.g. this
   * host's worker that crashed before this one started), instead of waiting for them to idle.
   */
  async takeOver(isGone: (consumer: string) => boolean, count: number): Promise<CommandEntry[]> {
    const consumers = (await this.redis.xinfo('CONSUMERS', COMMANDS_STREAM, WORKER_GROUP)) as (string | number)[][];
    const out: CommandEntry[] = [];
    for (const info of consumers) {
      const name = String(info[info.indexOf('name') + 1]);
      const pending = Number(info[info.indexOf('pending') + 1]);
      if (name === this.consumer || pending === 0 || !isGone(name) || out.length >= count) continue;
      const held = (await this.redis.xpending(COMMANDS_STREAM, WORKER_GROUP, '-', '+', count - out.length, name)) as [string][];
      if (held.length === 0) continue;
      const claimed = (await this.redis.xclaim(COMMANDS_STREAM, WORKER_GROUP, this.consumer, 0, ...held.map(([id]) => id))) as RawEntry[];
      out.push(...entries(claimed));
    }
    return out;
  }

  /**
   * Trims the commands stream to about `maxLen` (never below a pending or undelivered entry),
   * prunes the recent-tasks index to `ttlS`, and removes consumers with nothing pending unseen for
   * `pruneIdleMs`; returns the names removed.
   */
  async maintain(options: { maxLen: number; ttlS: number; pruneIdleMs: number }): Promise<string[]> {
    await this.redis.trimCommands(COMMANDS_STREAM, WORKER_GROUP, options.maxLen);
    await pruneIndex(this.redis, options.ttlS);
    return pruneConsumers(this.redis, options.pruneIdleMs, this.consumer);
  }
}

/** Entries whose fields are gone (deleted after delivery) are dropped. */
function entries(raw: RawEntry[]): CommandEntry[] {
  const out: CommandEntry[] = [];
  for (const [id, fields] of raw) {
    if (!fields) continue;
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
    out.push({ id, fields: record });
  }
  return out;
}
