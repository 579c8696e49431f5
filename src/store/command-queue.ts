import { ensureGroup, pruneConsumers } from './consumer-group.js';
import { PRIORITIES, WORKER_GROUP, commandsStream, taskKey, type Priority } from './keys.js';
import { pruneIndex } from './task-index.js';
import type { Redis } from './redis.js';

/** A command entry of the commands stream of `priority`. */
export interface CommandEntry {
  id: string;
  priority: Priority;
  fields: Record<string, string>;
}

/** What a heartbeat found for a command (heartbeat.lua). */
export type Verdict = 'KEPT' | 'LOST' | 'ENDED' | 'CANCEL' | 'CORRUPTED';

/** A command this worker runs, as heartbeat() takes it. */
export interface HeldCommand {
  command: Pick<CommandEntry, 'id' | 'priority'>;
  taskId: string;
  lease: string;
}

type RawEntry = [id: string, fields: string[] | null];

/**
 * A worker's side of the commands streams (one per priority, each with the `workers` group), as
 * the consumer `consumer`: reading (high before normal before low), keeping, handing back and
 * reclaiming commands, taking over those of dead workers, and the streams' maintenance. Claims and
 * events go through TaskWrites.
 */
export class CommandQueue {
  /** XAUTOCLAIM cursor per priority. */
  private readonly cursors = new Map<Priority, string>(PRIORITIES.map((p) => [p, '0-0']));

  constructor(
    private readonly redis: Redis,
    readonly consumer: string,
  ) {}

  /** Creates the `workers` group (and the streams) from the first entry; an existing group is fine. */
  ensureGroup(): Promise<void> {
    return ensureGroup(this.redis);
  }

  /**
   * Up to `count` new commands on `reader` (a blocking reader's connection), every waiting one of
   * a higher priority before any of a lower one. When none waits, blocks at most `blockMs` for the
   * first to come on any stream: that read may return one per stream, more than `count` (the
   * caller hands back what it cannot start).
   */
  async read(reader: Redis, count: number, blockMs: number): Promise<CommandEntry[]> {
    const out: CommandEntry[] = [];
    for (const priority of PRIORITIES) {
      if (out.length >= count) return out;
      const reply = (await reader.xreadgroup(
        'GROUP', WORKER_GROUP, this.consumer, 'COUNT', count - out.length, 'STREAMS', commandsStream(priority), '>',
      )) as [string, RawEntry[]][] | null;
      out.push(...entries((reply ?? []).flatMap(([, e]) => e), priority));
    }
    if (out.length > 0) return out;
    const streams = PRIORITIES.map(commandsStream);
    const reply = (await reader.xreadgroup(
      'GROUP', WORKER_GROUP, this.consumer, 'COUNT', 1, 'BLOCK', blockMs, 'STREAMS', ...streams, ...streams.map(() => '>'),
    )) as [string, RawEntry[]][] | null;
    for (const priority of PRIORITIES) {
      const found = (reply ?? []).find(([stream]) => stream === commandsStream(priority));
      if (found) out.push(...entries(found[1], priority));
    }
    return out;
  }

  /**
   * Sets the idle time of the commands we run to `idleMs` (0: a heartbeat; CLAIM_IDLE_MS: hand
   * them to other workers now), for those whose task we still lease (an empty lease: a claim not
   * recorded yet, kept while we hold the command). Returns each command's verdict, in `runs` order.
   */
  async heartbeat(runs: HeldCommand[], idleMs: number): Promise<Verdict[]> {
    const out: Verdict[] = new Array<Verdict>(runs.length);
    await Promise.all(PRIORITIES.map(async (priority) => {
      const mine = runs.flatMap((r, i) => (r.command.priority === priority ? [i] : []));
      if (mine.length === 0) return;
      const keys = [commandsStream(priority), ...mine.map((i) => taskKey(runs[i]!.taskId))];
      const args = [WORKER_GROUP, this.consumer, idleMs, ...mine.flatMap((i) => [runs[i]!.command.id, runs[i]!.lease])];
      const reply = await this.redis.heartbeat(keys.length, ...keys, ...args);
      mine.forEach((run, j) => (out[run] = reply[2 * j + 1] as Verdict));
    }));
    return out;
  }

  /** Commands read but never started: idle for `idleMs` at once, so another worker takes them now. */
  async handBack(commands: Pick<CommandEntry, 'id' | 'priority'>[], idleMs: number): Promise<void> {
    await Promise.all(PRIORITIES.map(async (priority) => {
      const ids = commands.filter((c) => c.priority === priority).map((c) => c.id);
      if (ids.length > 0) await this.redis.xclaim(commandsStream(priority), WORKER_GROUP, this.consumer, 0, ...ids, 'IDLE', idleMs, 'JUSTID');
    }));
  }

  /**
   * Takes up to `count` commands idle longer than `minIdleMs` (their worker died or stalled), of a
   * higher priority first, each stream's pending list scanned on from where the last call stopped.
   * `deleted`: pending ids whose entry was trimmed away.
   */
  async reclaim(minIdleMs: number, count: number): Promise<{ entries: CommandEntry[]; deleted: string[] }> {
    const out: CommandEntry[] = [];
    const deleted: string[] = [];
    for (const priority of PRIORITIES) {
      if (out.length >= count) break;
      const [next, raw, gone] = (await this.redis.xautoclaim(
        commandsStream(priority), WORKER_GROUP, this.consumer, minIdleMs, this.cursors.get(priority)!, 'COUNT', count - out.length,
      )) as [string, RawEntry[], string[]];
      this.cursors.set(priority, next);
      out.push(...entries(raw, priority));
      deleted.push(...gone);
    }
    return { entries: out, deleted };
  }

  /**
   * Takes at once up to `count` commands held by consumers that `isGone` says are dead (e.g. this
   * host's worker that crashed before this one started), instead of waiting for them to idle.
   */
  async takeOver(isGone: (consumer: string) => boolean, count: number): Promise<CommandEntry[]> {
    const out: CommandEntry[] = [];
    for (const priority of PRIORITIES) {
      const stream = commandsStream(priority);
      const consumers = (await this.redis.xinfo('CONSUMERS', stream, WORKER_GROUP)) as (string | number)[][];
      for (const info of consumers) {
        const name = String(info[info.indexOf('name') + 1]);
        const pending = Number(info[info.indexOf('pending') + 1]);
        if (name === this.consumer || pending === 0 || !isGone(name) || out.length >= count) continue;
        const held = (await this.redis.xpending(stream, WORKER_GROUP, '-', '+', count - out.length, name)) as [string][];
        if (held.length === 0) continue;
        const claimed = (await this.redis.xclaim(stream, WORKER_GROUP, this.consumer, 0, ...held.map(([id]) => id))) as RawEntry[];
        out.push(...entries(claimed, priority));
      }
    }
    return out;
  }

  /**
   * Trims each commands stream to about `maxLen` (never below a pending or undelivered entry),
   * prunes the recent-tasks index to `ttlS`, and removes consumers with nothing pending unseen for
   * `pruneIdleMs`; returns the names removed.
   */
  async maintain(options: { maxLen: number; ttlS: number; pruneIdleMs: number }): Promise<string[]> {
    const removed: string[] = [];
    for (const priority of PRIORITIES) {
      await this.redis.trimCommands(commandsStream(priority), WORKER_GROUP, options.maxLen);
      removed.push(...(await pruneConsumers(this.redis, commandsStream(priority), options.pruneIdleMs, this.consumer)));
    }
    await pruneIndex(this.redis, options.ttlS);
    return [...new Set(removed)];
  }
}

/** Entries whose fields are gone (deleted after delivery) are dropped. */
function entries(raw: RawEntry[], priority: Priority): CommandEntry[] {
  const out: CommandEntry[] = [];
  for (const [id, fields] of raw) {
    if (!fields) continue;
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
    out.push({ id, priority, fields: record });
  }
  return out;
}
