import { Batcher } from './batcher.js';
import { COMMANDS_STREAM, WORKER_GROUP, eventsKey, taskKey } from './keys.js';
import { itemReplies, type Redis } from './redis.js';

/** One event for append-events.lua; see its header for the contract. */
export interface AppendInput {
  taskId: string;
  lease: string;
  status: string;
  /** '' keeps the current progress. */
  progress: number | '';
  /** The stage number this event records; absent for an event that is not a stage. */
  step?: number | undefined;
  terminal?: boolean | undefined;
  /** The command acked with a terminal event. */
  commandId?: string | undefined;
  /** Event time, epoch ms. */
  ts: number;
  extra?: Record<string, string | number> | undefined;
}

export type AppendReply =
  | ['OK', string]
  | ['DUPLICATE'] | ['FENCED'] | ['TERMINAL'] | ['GONE'] | ['CANCEL'];

export interface ClaimInput {
  taskId: string;
  lease: string;
  commandId: string;
}

export type ClaimReply =
  | ['OK' | 'CANCEL', string, string]
  | ['TERMINAL', string] | ['GONE'] | ['POISON', string] | ['LOST'];

export interface TaskWritesOptions {
  /** Worker consumer name: claims require holding the command in the group's pending list. */
  consumer: string;
  /** TTL set on both task keys by a terminal event, seconds. */
  ttlS: number;
  /** A command delivered more often than this is poison. */
  maxDeliveries: number;
  /** Most items per script call (default 64), which bounds how long one call holds Redis. */
  maxBatch?: number;
}

type Write = { kind: 'claim'; input: ClaimInput } | { kind: 'append'; input: AppendInput };

/**
 * A worker's writes to task state: claims and event appends, batched together as one group commit
 * (see Batcher): the claims of a batch go in one call of claim-tasks.lua and its events in one
 * call of append-events.lua, sent in the same turn so they share a socket write. Each item stays
 * atomic and is decided on its own; a batch only saves round trips and script calls. Holds no
 * connection of its own.
 */
export class TaskWrites {
  private readonly batcher: Batcher<Write, ClaimReply | AppendReply>;

  constructor(
    private readonly redis: Redis,
    private readonly options: TaskWritesOptions,
  ) {
    this.batcher = new Batcher((items) => this.send(items), options.maxBatch);
  }

  /** Records one event; the reply says whether it was recorded, and if not, why. */
  append(event: AppendInput): Promise<AppendReply> {
    return this.batcher.add({ kind: 'append', input: event }) as Promise<AppendReply>;
  }

  /** Takes a task's lease for the command this worker holds. */
  claim(input: ClaimInput): Promise<ClaimReply> {
    return this.batcher.add({ kind: 'claim', input }) as Promise<ClaimReply>;
  }

  private async send(items: Write[]): Promise<(ClaimReply | AppendReply | Error | undefined)[]> {
    const claims = items.flatMap((w) => (w.kind === 'claim' ? [w.input] : []));
    const appends = items.flatMap((w) => (w.kind === 'append' ? [w.input] : []));
    const [claimed, appended] = await Promise.allSettled([
      claims.length > 0 ? this.claimAll(claims) : Promise.resolve([]),
      appends.length > 0 ? this.appendAll(appends) : Promise.resolve([]),
    ]);
    const next = { claim: 0, append: 0 };
    return items.map((w) => {
      const settled = w.kind === 'claim' ? claimed : appended;
      const i = next[w.kind]++;
      if (settled.status === 'rejected') return settled.reason instanceof Error ? settled.reason : new Error(String(settled.reason));
      return settled.value[i];
    });
  }

  private async claimAll(items: ClaimInput[]): Promise<(ClaimReply | Error)[]> {
    const { consumer, maxDeliveries } = this.options;
    const keys = [COMMANDS_STREAM, ...items.map((c) => taskKey(c.taskId))];
    const argv = [WORKER_GROUP, consumer, maxDeliveries, ...items.flatMap((c) => [c.lease, c.commandId])];
    return itemReplies<ClaimReply>(await this.redis.claimTasks(keys.length, ...keys, ...argv));
  }

  private async appendAll(items: AppendInput[]): Promise<(AppendReply | Error)[]> {
    const keys = [COMMANDS_STREAM, ...items.flatMap((e) => [taskKey(e.taskId), eventsKey(e.taskId)])];
    const argv: (string | number)[] = [WORKER_GROUP, this.options.ttlS];
    for (const e of items) {
      const args: (string | number)[] = [
        e.lease, e.step ?? '', e.terminal ? '1' : '0', e.terminal ? (e.commandId ?? '') : '', e.ts, e.status, e.progress,
      ];
      for (const [k, v] of Object.entries(e.extra ?? {})) args.push(k, v);
      argv.push(args.length, ...args);
    }
    return itemReplies<AppendReply>(await this.redis.appendEvents(keys.length, ...keys, ...argv));
  }
}
