import { nodeServing } from './cluster-nodes.js';
import { ensureGroup, pruneConsumers } from './consumer-group.js';
import { PRIORITIES, WORKER_GROUP, commandsStream, keyIn, taskKey, type Priority } from './keys.js';
import { layoutOf, type Layout, type Partition } from './layout.js';
import { pruneIndex } from './task-index.js';
import type { Redis } from './redis.js';

/**
 * A command read from the commands stream of `priority` in `partition`, its fields decoded. Any
 * field may be missing from a malformed entry (the worker dead-letters it, check-command.ts).
 */
export interface CommandEntry {
  id: string;
  priority: Priority;
  partition: Partition;
  taskId: string | undefined;
  type: string | undefined;
  /** The task's params, JSON text. */
  params: string | undefined;
  concurrencyKey: string | undefined;
  /** When it was queued (the time part of its entry id), epoch ms. */
  queuedAtMs: number;
  /** Every field as stored: what a dead letter records (TaskWrites.deadLetter). */
  stored: Record<string, string>;
}

/** What a heartbeat found for a command (heartbeat.lua). */
export type Verdict = 'KEPT' | 'LOST' | 'ENDED' | 'GONE' | 'CANCEL' | 'CORRUPTED';

/** A command this worker runs, as heartbeat() takes it. */
export interface HeldCommand {
  command: Pick<CommandEntry, 'id' | 'priority' | 'partition'>;
  taskId: string;
  lease: string;
}

type RawEntry = [id: string, fields: string[] | null];

/**
 * A worker's side of the commands streams (per partition, one per priority, each with the
 * `workers` group), as the consumer `consumer`: reading (high before normal before low), keeping,
 * handing back and reclaiming commands, taking over those of dead workers, and the streams'
 * maintenance. Claims and events go through TaskWrites.
 */
export class CommandQueue {
  /** XAUTOCLAIM cursor per partition and priority. */
  private readonly cursors = new Map<string, string>();
  readonly layout: Layout;

  constructor(
    private readonly redis: Redis,
    readonly consumer: string,
  ) {
    this.layout = layoutOf(redis);
  }

  /** Creates the `workers` group (and the streams) from the first entry; an existing group is fine. */
  ensureGroup(): Promise<void> {
    return ensureGroup(this.redis);
  }

  /**
   * Up to `count` (at least 1) new commands of `priority` in partition `p` on `reader` (a blocking
   * reader's connection to it), without blocking.
   */
  async take(reader: Redis, p: Partition, priority: Priority, count: number): Promise<CommandEntry[]> {
    const reply = (await reader.xreadgroup(
      'GROUP', WORKER_GROUP, this.consumer, 'COUNT', count, 'STREAMS', keyIn(p, commandsStream(priority)), '>',
    )) as [string, RawEntry[]][] | null;
    return entries((reply ?? []).flatMap(([, e]) => e), priority, p);
  }

  /**
   * Blocks at most `blockMs` for the first command to come on any of `p`'s streams; the read may
   * return one per stream (the caller hands back what it cannot start).
   */
  async await(reader: Redis, p: Partition, blockMs: number): Promise<CommandEntry[]> {
    const streams = PRIORITIES.map((priority) => keyIn(p, commandsStream(priority)));
    const reply = (await reader.xreadgroup(
      'GROUP', WORKER_GROUP, this.consumer, 'COUNT', 1, 'BLOCK', blockMs, 'STREAMS', ...streams, ...streams.map(() => '>'),
    )) as [string, RawEntry[]][] | null;
    const out: CommandEntry[] = [];
    PRIORITIES.forEach((priority, i) => {
      const found = (reply ?? []).find(([stream]) => stream === streams[i]);
      if (found) out.push(...entries(found[1], priority, p));
    });
    return out;
  }

  /**
   * Sets the idle time of the commands we run to `idleMs` (0: a heartbeat; CLAIM_IDLE_MS: hand
   * them to other workers now), for those whose task we still lease (an empty lease: a claim not
   * recorded yet, kept while we hold the command). Returns each command's verdict, in `runs` order.
   */
  async heartbeat(runs: HeldCommand[], idleMs: number): Promise<Verdict[]> {
    const out: Verdict[] = new Array<Verdict>(runs.length);
    await Promise.all([...byStream(runs.map((r) => r.command))].map(async ([, { p, priority, at }]) => {
      const keys = [keyIn(p, commandsStream(priority)), ...at.map((i) => keyIn(p, taskKey(runs[i]!.taskId)))];
      const args = [WORKER_GROUP, this.consumer, idleMs, ...at.flatMap((i) => [runs[i]!.command.id, runs[i]!.lease])];
      const reply = await this.redis.heartbeat(keys.length, ...keys, ...args);
      at.forEach((run, j) => (out[run] = reply[2 * j + 1] as Verdict));
    }));
    return out;
  }

  /** Commands read but never started: idle for `idleMs` at once, so another worker takes them now. */
  async handBack(commands: Pick<CommandEntry, 'id' | 'priority' | 'partition'>[], idleMs: number): Promise<void> {
    await Promise.all([...byStream(commands)].map(async ([stream, { at }]) => {
      const ids = at.map((i) => commands[i]!.id);
      await this.redis.xclaim(stream, WORKER_GROUP, this.consumer, 0, ...ids, 'IDLE', idleMs, 'JUSTID');
    }));
  }

  /**
   * Undoes the delivery that `reclaim` counted for commands this worker was still running (it took
   * them back after its own heartbeats came late): each one's count goes down by one while we hold
   * it. Our XAUTOCLAIM left them idle for 0 ms, so no other worker takes them in between.
   */
  async undoDelivery(commands: Pick<CommandEntry, 'id' | 'priority' | 'partition'>[]): Promise<void> {
    await Promise.all([...byStream(commands)].map(async ([stream, { at }]) => {
      for (const i of at) {
        const id = commands[i]!.id;
        const [held] = (await this.redis.xpending(stream, WORKER_GROUP, id, id, 1)) as [string, string, number, number][];
        if (held && held[1] === this.consumer && held[3] > 1) {
          await this.redis.xclaim(stream, WORKER_GROUP, this.consumer, 0, id, 'RETRYCOUNT', held[3] - 1, 'JUSTID');
        }
      }
    }));
  }

  /**
   * Takes up to `count` commands idle longer than `minIdleMs` (their worker died or stalled), of a
   * higher priority first, each stream's pending list scanned on from where the last call stopped.
   * `deleted`: pending ids whose entry was trimmed away. A partition whose read fails (its node is
   * down, or hangs until the command timeout) is passed over, and so are the other partitions of
   * its node, so the others' commands are taken all the same; `failed` holds one error per node.
   * Rejects when no partition answered.
   */
  async reclaim(minIdleMs: number, count: number): Promise<{ entries: CommandEntry[]; deleted: string[]; failed: unknown[] }> {
    const out: CommandEntry[] = [];
    const deleted: string[] = [];
    const failed = new Map<string, unknown>();
    let answered = false;
    const nodeOf = (p: Partition) => {
      try {
        return this.layout.cluster ? nodeServing(this.redis, p) : '';
      } catch {
        // No node serves it in the client's slot map (a failover under way): judged on its own.
        return `partition ${p.index}`;
      }
    };
    for (const priority of PRIORITIES) {
      for (const p of this.layout.partitions) {
        if (out.length >= count) break;
        if (failed.has(nodeOf(p))) continue;
        const stream = keyIn(p, commandsStream(priority));
        try {
          const [next, raw, gone] = (await this.redis.xautoclaim(
            stream, WORKER_GROUP, this.consumer, minIdleMs, this.cursors.get(stream) ?? '0-0', 'COUNT', count - out.length,
          )) as [string, RawEntry[], string[]];
          this.cursors.set(stream, next);
          answered = true;
          out.push(...entries(raw, priority, p));
          deleted.push(...gone);
        } catch (err) {
          failed.set(nodeOf(p), err);
        }
      }
    }
    if (!answered && failed.size > 0) throw failed.values().next().value;
    return { entries: out, deleted, failed: [...failed.values()] };
  }

  /**
   * Takes at once up to `count` commands held by consumers that `isGone` says are dead (e.g. this
   * host's worker that crashed before this one started), instead of waiting for them to idle.
   */
  async takeOver(isGone: (consumer: string) => boolean, count: number): Promise<CommandEntry[]> {
    const out: CommandEntry[] = [];
    for (const [p, priority] of this.streams()) {
      const stream = keyIn(p, commandsStream(priority));
      const consumers = (await this.redis.xinfo('CONSUMERS', stream, WORKER_GROUP)) as (string | number)[][];
      for (const info of consumers) {
        const name = String(info[info.indexOf('name') + 1]);
        const pending = Number(info[info.indexOf('pending') + 1]);
        if (name === this.consumer || pending === 0 || !isGone(name) || out.length >= count) continue;
        const held = (await this.redis.xpending(stream, WORKER_GROUP, '-', '+', count - out.length, name)) as [string][];
        if (held.length === 0) continue;
        const claimed = (await this.redis.xclaim(stream, WORKER_GROUP, this.consumer, 0, ...held.map(([id]) => id))) as RawEntry[];
        out.push(...entries(claimed, priority, p));
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
    for (const [p, priority] of this.streams()) {
      const stream = keyIn(p, commandsStream(priority));
      await this.redis.trimCommands(stream, WORKER_GROUP, options.maxLen);
      removed.push(...(await pruneConsumers(this.redis, stream, options.pruneIdleMs, this.consumer)));
    }
    await pruneIndex(this.redis, options.ttlS);
    return [...new Set(removed)];
  }

  /** Every commands stream: each partition's, by priority. */
  private streams(): [Partition, Priority][] {
    return PRIORITIES.flatMap((priority) => this.layout.partitions.map((p): [Partition, Priority] => [p, priority]));
  }
}

/** Positions of `commands` grouped by their stream (partition and priority). */
function byStream(commands: Pick<CommandEntry, 'priority' | 'partition'>[]): Map<string, { p: Partition; priority: Priority; at: number[] }> {
  const out = new Map<string, { p: Partition; priority: Priority; at: number[] }>();
  commands.forEach((c, i) => {
    const stream = keyIn(c.partition, commandsStream(c.priority));
    let group = out.get(stream);
    if (!group) out.set(stream, (group = { p: c.partition, priority: c.priority, at: [] }));
    group.at.push(i);
  });
  return out;
}

/** Entries whose fields are gone (deleted after delivery) are dropped. */
function entries(raw: RawEntry[], priority: Priority, partition: Partition): CommandEntry[] {
  const out: CommandEntry[] = [];
  for (const [id, fields] of raw) {
    if (!fields) continue;
    // No prototype: a field named __proto__ is a field like any other (it is recorded in dead letters).
    const record: Record<string, string> = Object.create(null);
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
    out.push({
      id, priority, partition,
      taskId: record.task_id, type: record.type, params: record.params, concurrencyKey: record.concurrency_key,
      queuedAtMs: Number(id.slice(0, id.indexOf('-'))),
      stored: record,
    });
  }
  return out;
}
