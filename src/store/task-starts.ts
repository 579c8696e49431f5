import { v4 as uuidv4 } from 'uuid';
import type { TaskState } from '../wire/task-state.js';
import { Batcher } from './batcher.js';
import { COMMANDS_STREAM, SCHEDULED_SET, TASKS_INDEX, commandsStream, eventsKey, idempotencyKey, keyIn, tagKey, taskKey, type Priority } from './keys.js';
import { batchPerPartition, idIn, layoutOf, type Layout, type Partition } from './layout.js';
import { itemReplies, type Redis } from './redis.js';
import { awaitReplicas } from './replication.js';

export interface StartedTask {
  state: TaskState;
  commandId: string;
}

/** Options of a start beyond its type and params. */
export interface StartOptions {
  /** Stored in the hash field `tags` (a JSON array) and indexed in `tasks:tag:<tag>`. */
  tags?: string[];
  /**
   * At most one task per (scope, key) while the key lives: a start that finds the key held with
   * the same fingerprint answers the task it names (`replayed`), with another one it rejects
   * with IdempotencyConflict ('reused').
   */
  idempotency?: { scope: string; key: string; fingerprint: string };
  /** Default normal. */
  priority?: Priority | undefined;
  /** Due time, epoch ms: the task is SCHEDULED until then. Absent: it is PENDING at once. */
  runAt?: number | undefined;
  /** Tasks of one type with the same key share its per-key concurrency limit. */
  concurrencyKey?: string | undefined;
  /**
   * Cluster mode: tasks with the same pin share a partition (src/store/layout.ts), as the tasks of
   * a type with a concurrency limit must (its slots live in one partition). Default: the
   * idempotency key when there is one (so a retry finds it), else a random partition.
   */
  pin?: string | undefined;
}

/**
 * A start that named an idempotency key the store could not honour: the key is held for another
 * request (`reused`), or the task it names is gone (`gone`: deleted by hand; the key never
 * outlives the task by itself). `taskId` is the task the key names.
 */
export class IdempotencyConflict extends Error {
  constructor(
    readonly reason: 'reused' | 'gone',
    readonly taskId: string,
  ) {
    super(`idempotency key ${reason} (task ${taskId})`);
    this.name = 'IdempotencyConflict';
  }
}

/**
 * A start that Redis made (the task exists and runs) but whose confirmation on the replicas
 * failed (REDIS_CLUSTER_WAIT_REPLICAS: NotReplicated, or the connection failed during the WAIT): it
 * is lost only if its master fails before a replica has it. `cause` is that failure.
 */
export class StartUnconfirmed extends Error {
  constructor(
    readonly taskId: string,
    override readonly cause: unknown,
  ) {
    super(`task ${taskId} was started, but no replica confirmed it: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'StartUnconfirmed';
  }
}

interface StartItem {
  partition: Partition;
  taskId: string;
  type: string;
  paramsJson: string;
  now: number;
  tags: string[];
  idempotency: StartOptions['idempotency'];
  priority: Priority;
  runAt: number | undefined;
  concurrencyKey: string | undefined;
}

type StartReply = ['OK', string, string] | ['REPLAY' | 'REUSED', string];

/**
 * Task starts: each one atomic (start-tasks.lua), in group commits (one script call per partition
 * per round trip), with idempotency keys. Holds no connection of its own.
 */
export class TaskStarts {
  private readonly add: (item: StartItem) => Promise<StartReply>;
  private readonly idemTtlS: number;

  /** `read`: a task's state and start command id, or null (TaskStore's). */
  constructor(
    private readonly redis: Redis,
    private readonly options: { ttlS: number; idempotencyTtlS?: number },
    private readonly read: (taskId: string) => Promise<StartedTask | null>,
  ) {
    this.idemTtlS = Math.min(options.idempotencyTtlS ?? 86400, options.ttlS);
    this.add = batchPerPartition(layoutOf(redis), (i) => i.partition, (p) => new Batcher((items) => this.startAll(p, items)));
  }

  private get layout(): Layout {
    return layoutOf(this.redis);
  }

  /**
   * Starts a task (start-tasks.lua): PENDING with its command queued, or SCHEDULED until
   * `options.runAt`; or, when `options.idempotency` names a key held with the same fingerprint,
   * answers the task that key started, as it is now (`replayed`). Rejects with
   * IdempotencyConflict when the key is held for another request.
   */
  async start(type: string, params: unknown, now: number, options: StartOptions): Promise<StartedTask & { replayed: boolean }> {
    const { layout } = this;
    const { idempotency } = options;
    const keyPin = idempotency && `${idempotency.scope}:${idempotency.key}`;
    const pin = options.pin ?? keyPin;
    const fresh = uuidv4();
    const partition = pin === undefined ? layout.of(fresh) : layout.pinned(pin);
    let taskId = idIn(partition, layout.partitions.length, fresh);
    let guard = idempotency;
    if (idempotency && options.pin !== undefined && layout.pinned(keyPin!) !== partition) {
      // The key lives in its own partition, the task in its type's: the key is reserved first,
      // then the task created under a guard of its own id, so that a retry completes a start
      // interrupted between the two and nothing is started twice.
      const held = await this.reserve(layout.pinned(keyPin!), idempotency, taskId);
      if (held && held.fingerprint !== idempotency.fingerprint) throw new IdempotencyConflict('reused', held.taskId);
      // Started unpinned (the type's limit came later): the task is where that start put it.
      if (held && layout.of(held.taskId) !== partition) return this.replay(held.taskId);
      taskId = held?.taskId ?? taskId;
      guard = { scope: 'task', key: taskId, fingerprint: idempotency.fingerprint };
    }
    return this.create(partition, taskId, type, params, now, { ...options, idempotency: guard });
  }

  /** The task an idempotency key names, as it is now; IdempotencyConflict ('gone') when it is gone. */
  private async replay(taskId: string): Promise<StartedTask & { replayed: boolean }> {
    const found = await this.read(taskId);
    if (!found) throw new IdempotencyConflict('gone', taskId);
    return { ...found, replayed: true };
  }

  /**
   * Holds `idempotency`'s key in partition `p` for `taskId` unless it is held already: then the
   * fingerprint and task it holds.
   */
  private async reserve(p: Partition, idempotency: NonNullable<StartOptions['idempotency']>, taskId: string): Promise<{ fingerprint: string; taskId: string } | null> {
    const held = (await this.redis.call(
      'SET', keyIn(p, idempotencyKey(idempotency.scope, idempotency.key)), `${idempotency.fingerprint}:${taskId}`, 'EX', this.idemTtlS, 'NX', 'GET',
    )) as string | null;
    await awaitReplicas(this.redis, p);
    if (held === null) return null;
    const at = held.lastIndexOf(':');
    return { fingerprint: held.slice(0, at), taskId: held.slice(at + 1) };
  }

  /** Creates task `taskId` in `partition` (start-tasks.lua), unless `options.idempotency` names a held key. */
  private async create(
    partition: Partition,
    taskId: string,
    type: string,
    params: unknown,
    now: number,
    options: StartOptions,
  ): Promise<StartedTask & { replayed: boolean }> {
    const tags = options.tags ?? [];
    const { runAt, concurrencyKey } = options;
    const priority = options.priority ?? 'normal';
    const reply = await this.add({
      partition, taskId, type, paramsJson: JSON.stringify(params), now, tags, idempotency: options.idempotency, priority, runAt, concurrencyKey,
    });
    if (reply[0] === 'REUSED') throw new IdempotencyConflict('reused', reply[1]);
    if (reply[0] === 'REPLAY') return this.replay(reply[1]);
    const [, eventId, commandId] = reply as ['OK', string, string];
    return {
      commandId,
      replayed: false,
      state: {
        task_id: taskId,
        type,
        status: runAt === undefined ? 'PENDING' : 'SCHEDULED',
        progress: 0,
        last_event_id: eventId,
        created_at: now,
        updated_at: now,
        params,
        ...(tags.length === 0 ? {} : { tags }),
        priority,
        ...(runAt === undefined ? {} : { run_at: runAt }),
        ...(concurrencyKey === undefined ? {} : { concurrency_key: concurrencyKey }),
      },
    };
  }

  private async startAll(p: Partition, items: StartItem[]): Promise<(StartReply | Error)[]> {
    const keys = [keyIn(p, COMMANDS_STREAM), keyIn(p, TASKS_INDEX), ...items.flatMap((i) => [
      keyIn(p, taskKey(i.taskId)), keyIn(p, eventsKey(i.taskId)),
      ...(i.idempotency ? [keyIn(p, idempotencyKey(i.idempotency.scope, i.idempotency.key))] : []),
      ...i.tags.map((tag) => keyIn(p, tagKey(tag))),
    ])];
    const argv = [this.options.ttlS, ...items.flatMap((i) => [
      i.taskId, i.type, i.paramsJson, i.now,
      i.tags.length === 0 ? '' : JSON.stringify(i.tags), i.idempotency?.fingerprint ?? '', this.idemTtlS,
      i.priority, keyIn(p, commandsStream(i.priority)), i.runAt ?? '', keyIn(p, SCHEDULED_SET), i.concurrencyKey ?? '',
    ])];
    const replies = itemReplies<StartReply>(await this.redis.startTasks(keys.length, ...keys, ...argv), items.map((i) => i.taskId));
    const unconfirmed = await awaitReplicas(this.redis, p).then(() => undefined, (err: unknown) => err ?? new Error('WAIT failed'));
    if (unconfirmed === undefined) return replies;
    // The tasks it made exist: their starts say so, with their ids (a retry without an Idempotency-Key would make another).
    return replies.map((r, i) => (!(r instanceof Error) && r[0] === 'OK' ? new StartUnconfirmed(items[i]!.taskId, unconfirmed) : r));
  }
}
