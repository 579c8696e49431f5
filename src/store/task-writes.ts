import { Batcher } from './batcher.js';
import type { CommandEntry } from './command-queue.js';
import { COMMANDS_STREAM, DEAD_LETTER_STREAM, WORKER_GROUP, commandsStream, eventsKey, keyIn, taskKey, type Priority } from './keys.js';
import { batchPerPartition, layoutOf, type Partition } from './layout.js';
import { awaitReplicas } from './replication.js';
import { itemReplies, type Redis } from './redis.js';
import { slotArgs, type SlotLimits } from './slots.js';

/** One event of an append item; see append-events.lua for the contract. */
export type EventInput =
  /** An output chunk: text, or a record as JSON text. */
  | { kind: 'text' | 'json'; ts: number; value: string }
  /** A progress update; the status stays. */
  | { kind: 'progress'; ts: number; percent: number; message?: string | undefined }
  | {
      kind: 'stage';
      ts: number;
      status: string;
      /** '' keeps the current progress. */
      progress: number | '';
      /** The stage number this event records; absent for an event that is not a stage. */
      step?: number | undefined;
      terminal?: boolean | undefined;
      /** Further fields as name, value pairs (attempt, error, result). */
      fields?: (string | number)[] | undefined;
    };

/** One run's events for one task, in the order the run made them. */
export interface AppendItem {
  taskId: string;
  lease: string;
  /** The command acked with a terminal event. */
  commandId: string;
  /** The run's sequence number of the first event; the others follow it one by one. */
  firstSeq: number;
  events: EventInput[];
}

/** Per event: its event id, or why it was not recorded. */
export type EventReply = string;
/** GAP: the log lost events of the run (see append-events.lua). */
export type AppendReply = ['OK', ...EventReply[]] | ['FENCED'] | ['TERMINAL'] | ['GONE'] | ['GAP'];

export interface ClaimInput {
  taskId: string;
  lease: string;
  commandId: string;
  /** The concurrency limits of its type (whose slots it takes); absent: none (neither its type nor its start set one). */
  slots?: ({ type: string } & SlotLimits) | undefined;
}

export type ClaimReply =
  | ['OK' | 'CANCEL', string, string]
  | ['TERMINAL', string] | ['GONE'] | ['POISON', string] | ['LOST']
  /** Over its concurrency limit: it waits for a slot (why: 'concurrency' | 'concurrency_key'); its command is acked. */
  | ['WAIT', string];

export interface TaskWritesOptions {
  /** Worker consumer name: claims require holding the command in the group's pending list. */
  consumer: string;
  /** TTL set on both task keys by a terminal event, seconds. */
  ttlS: number;
  /** A command delivered more often than this is poison. */
  maxDeliveries: number;
  /** Most events per script call (default 512), which bounds how long one call holds Redis. */
  maxBatch?: number;
}

type Write = { kind: 'claim'; input: ClaimInput } | { kind: 'append'; input: AppendItem };

/**
 * A worker's writes to task state: claims and event appends, batched together as one group commit
 * (see Batcher): the claims of a batch go in one call of claim-tasks.lua and its appends in one
 * call of append-events.lua, sent in the same turn so they share a socket write. Each item stays
 * atomic and is decided on its own; a batch only saves round trips and script calls. Holds no
 * connection of its own.
 */
export class TaskWrites {
  private readonly add: (write: Write) => Promise<ClaimReply | AppendReply>;

  constructor(
    private readonly redis: Redis,
    private readonly options: TaskWritesOptions,
  ) {
    const weight = (w: Write) => (w.kind === 'append' ? w.input.events.length : 1);
    const layout = layoutOf(redis);
    this.add = batchPerPartition(layout, (w) => layout.of(w.input.taskId), (p) => new Batcher((items) => this.sendIn(p, items), options.maxBatch ?? 512, 1, weight));
  }

  /**
   * Records one run's events for a task; the reply says per event whether it was recorded, and if
   * not, why. Rejects with TaskCorrupted when the task's keys hold the wrong type.
   */
  append(item: AppendItem): Promise<AppendReply> {
    return this.add({ kind: 'append', input: item }) as Promise<AppendReply>;
  }

  /** Acknowledges a command whose task has ended: it leaves the group's pending list. */
  async ack(command: { id: string; priority: Priority; partition: Partition }): Promise<void> {
    await this.redis.xack(keyIn(command.partition, commandsStream(command.priority)), WORKER_GROUP, command.id);
  }

  /**
   * Retires a poison command in one step (dead-letter.lua): copied to `tasks:dead` with `reason`,
   * its task ended FAILED when it can be (`wellFormed`: `taskId` is a task id; the task exists, has
   * not ended and its keys are of the right type), acked. Returns the dead letter's id and what
   * happened to the task (see the script's header).
   */
  async deadLetter(
    command: Pick<CommandEntry, 'id' | 'priority' | 'partition' | 'stored'>,
    taskId: string,
    wellFormed: boolean,
    reason: string,
    options: { maxLen: number; ttlS: number },
  ): Promise<[string, string]> {
    const p = command.partition;
    const reply = await this.redis.deadLetter(
      keyIn(p, commandsStream(command.priority)), keyIn(p, DEAD_LETTER_STREAM), keyIn(p, taskKey(taskId)), keyIn(p, eventsKey(taskId)),
      WORKER_GROUP, command.id, reason, options.maxLen, Date.now(), options.ttlS,
      wellFormed ? '1' : '0', JSON.stringify(command.stored),
    );
    await awaitReplicas(this.redis, p);
    return reply;
  }

  /** Takes a task's lease for the command this worker holds; TaskCorrupted as append(). */
  claim(input: ClaimInput): Promise<ClaimReply> {
    return this.add({ kind: 'claim', input }) as Promise<ClaimReply>;
  }

  /** One partition's batch (a script touches one slot). */
  private async sendIn(p: Partition, items: Write[]): Promise<(ClaimReply | AppendReply | Error | undefined)[]> {
    const claims = items.flatMap((w) => (w.kind === 'claim' ? [w.input] : []));
    const appends = items.flatMap((w) => (w.kind === 'append' ? [w.input] : []));
    const [claimed, appended] = await Promise.allSettled([
      claims.length > 0 ? this.claimAll(p, claims) : Promise.resolve([]),
      appends.length > 0 ? this.appendAll(p, appends) : Promise.resolve([]),
    ]);
    // Not confirmed on the replicas: every item fails, and is sent again (scripts skip what they have).
    const confirmed = await awaitReplicas(this.redis, p).then(() => null, (err: Error) => err);
    if (confirmed) return items.map(() => confirmed);
    const next = { claim: 0, append: 0 };
    return items.map((w) => {
      const settled = w.kind === 'claim' ? claimed : appended;
      const i = next[w.kind]++;
      if (settled.status === 'rejected') return settled.reason instanceof Error ? settled.reason : new Error(String(settled.reason));
      return settled.value[i];
    });
  }

  private async claimAll(p: Partition, items: ClaimInput[]): Promise<(ClaimReply | Error)[]> {
    const { consumer, maxDeliveries } = this.options;
    const keys = [keyIn(p, COMMANDS_STREAM), ...items.flatMap((c) => [keyIn(p, taskKey(c.taskId)), keyIn(p, eventsKey(c.taskId))])];
    const argv = [WORKER_GROUP, consumer, maxDeliveries, Date.now(), ...items.flatMap((c) => [c.lease, c.commandId, ...slotArgs(p, c.slots)])];
    return itemReplies<ClaimReply>(await this.redis.claimTasks(keys.length, ...keys, ...argv), items.map((c) => c.taskId));
  }

  private async appendAll(p: Partition, items: AppendItem[]): Promise<(AppendReply | Error)[]> {
    const keys = [keyIn(p, COMMANDS_STREAM)];
    const argv: (string | number)[] = [WORKER_GROUP, this.options.ttlS];
    for (const item of items) {
      keys.push(keyIn(p, taskKey(item.taskId)), keyIn(p, eventsKey(item.taskId)));
      argv.push(item.lease, item.commandId, item.firstSeq, item.events.length);
      for (const e of item.events) {
        if (e.kind === 'stage') {
          const fields = e.fields ?? [];
          argv.push('stage', e.ts, e.status, e.progress, e.step ?? '', e.terminal ? '1' : '0', fields.length / 2);
          for (const f of fields) argv.push(f);
        } else if (e.kind === 'progress') {
          argv.push('progress', e.ts, e.percent, e.message ?? '');
        } else {
          argv.push(e.kind, e.ts, e.value);
        }
      }
    }
    return itemReplies<AppendReply>(await this.redis.appendEvents(keys.length, ...keys, ...argv), items.map((i) => i.taskId));
  }
}
