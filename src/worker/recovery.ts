import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { CommandEntry, CommandQueue } from '../store/command-queue.js';
import { TaskCorrupted } from '../store/corrupted.js';
import { isReady, type Redis } from '../store/redis.js';
import { FailureStreak } from '../store/failure-streak.js';
import { redisTrouble } from '../store/unavailable.js';
import { isGoneConsumer } from './consumer-name.js';
import { CancelRequested, LeaseLost, TaskEnded, TaskGone } from './stops.js';
import { atMost } from '../at-most.js';
import { Periodic } from './periodic.js';

/** A command the worker runs. */
export interface Running {
  command: CommandEntry;
  taskId: string;
  /** Set once the run holds the task's lease; '' before (the heartbeat then keeps the command only). */
  lease: string;
  abort: AbortController;
  done: Promise<void>;
}

/** The key of a command in the worker's running map: its id is unique per stream (partition and priority). */
export function refOf(command: CommandEntry): string {
  return `${command.partition.index} ${command.priority} ${command.id}`;
}

export interface RecoveryDeps {
  redis: Redis;
  queue: CommandQueue;
  log: Logger;
  config: Pick<Config, 'CLAIM_IDLE_MS' | 'WORKER_CONCURRENCY'>;
  /** The worker's running commands, by refOf. */
  running: ReadonlyMap<string, Running>;
  /** Starts a command taken over (it is not running yet). */
  dispatch(command: CommandEntry): void;
  /** True once the worker is closing: nothing more is taken over. */
  closing(): boolean;
}

/** The heartbeat's period, ms: a third of CLAIM_IDLE_MS, at least 50. */
const heartbeatEveryMs = (claimIdleMs: number) => Math.max(50, Math.floor(claimIdleMs / 3));

/**
 * The worker's share of recovery: heartbeats that keep its commands from being reclaimed, and the
 * takeover of commands whose worker died or stalled (idle over CLAIM_IDLE_MS, or held by a worker
 * of this host that is gone), into free slots.
 *
 * After a pause longer than CLAIM_IDLE_MS (a stopped VM, a long GC, a handler that blocks the
 * event loop) the worker's own running commands are idle too, and XAUTOCLAIM would take them
 * again, each time adding a delivery, so that a task that never crashed a worker could count as
 * poison (MAX_DELIVERIES) at its next takeover. So a reclaim pass heartbeats first, and gives
 * back the delivery of any own command it still took (the heartbeat failed, or the process was
 * held up for CLAIM_IDLE_MS between the two). A failed heartbeat does not hold the pass back: the
 * commands of dead workers on the partitions that answer are taken all the same.
 */
export class Recovery {
  /** When the read loop next checks for commands due for reclaim, epoch ms. */
  private dueAt = 0;
  private pass: Promise<void> | undefined;
  /**
   * Every CLAIM_IDLE_MS / 3 (at least 50 ms), one at a time. Never backed off beyond that: the
   * commands a late heartbeat leaves idle for CLAIM_IDLE_MS are reclaimed by other workers.
   */
  private readonly beats: Periodic;
  private readonly reclaims: FailureStreak;
  private readonly takeOvers: FailureStreak;
  /** A timer at the heartbeat's period: how late it fires tells that the process was held up (watchHoldUps). */
  private holdUps: NodeJS.Timeout | undefined;

  constructor(private readonly deps: RecoveryDeps) {
    this.reclaims = new FailureStreak(() => deps.log, 'reclaim failed');
    this.takeOvers = new FailureStreak(() => deps.log, 'taking over the commands of dead workers failed');
    this.beats = new Periodic(deps.log, 'heartbeat', heartbeatEveryMs(deps.config.CLAIM_IDLE_MS), () => this.beat(), false);
  }

  startHeartbeats(): void {
    this.beats.start();
    this.watchHoldUps();
  }

  /** Stops the heartbeats, without waiting for one under way. Idempotent. */
  stopHeartbeats(): Promise<void> {
    clearInterval(this.holdUps);
    return this.beats.stop(0);
  }

  /**
   * Warns when the process was held up for half of CLAIM_IDLE_MS or more (a handler that blocks
   * the event loop, a long GC, a stopped process or VM): its heartbeats were late, and past
   * CLAIM_IDLE_MS other workers take its tasks over (fencing stops its own runs), which a handler
   * that blocks every time turns into a task passed around until MAX_DELIVERIES.
   */
  private watchHoldUps(): void {
    const everyMs = heartbeatEveryMs(this.deps.config.CLAIM_IDLE_MS);
    let last = Date.now();
    this.holdUps = setInterval(() => {
      const now = Date.now();
      const heldUpMs = now - last - everyMs;
      last = now;
      if (heldUpMs < this.deps.config.CLAIM_IDLE_MS / 2) return;
      this.deps.log.warn({ heldUpMs, claimIdleMs: this.deps.config.CLAIM_IDLE_MS }, 'the worker was held up (a handler blocking the event loop, a long GC, a stopped process): past CLAIM_IDLE_MS other workers take its tasks over');
    }, everyMs).unref();
  }

  /**
   * A reclaim pass is due (CLAIM_IDLE_MS / 4, at least 50 ms, after the last one ended, or now after
   * soon()). Counted from the end, so that a pass held up by a hung node (its commands time out)
   * leaves the read loop a turn before the next one, and the other partitions' commands are read.
   */
  get due(): boolean {
    return Date.now() >= this.dueAt;
  }

  /** Makes the next pass due now (commands were handed back: any worker may take them again). */
  soon(): void {
    this.dueAt = 0;
  }

  /** The reclaim pass under way, if any. */
  get inFlight(): Promise<void> | undefined {
    return this.pass;
  }

  /**
   * Resets the idle time of our commands (those whose task we still lease, or not yet claimed),
   * and aborts runs that lost their lease, whose task ended or is corrupted (the run dead-letters
   * it), or whose cancel we missed. Joins a heartbeat under way; a failure is logged (Periodic),
   * never thrown.
   */
  heartbeat(): Promise<void> {
    return this.beats.tick();
  }

  private async beat(): Promise<void> {
    const runs = [...this.deps.running.values()];
    if (runs.length === 0) return;
    const verdicts = await this.deps.queue.heartbeat(runs, 0);
    for (const [i, verdict] of verdicts.entries()) {
      const run = runs[i];
      if (verdict === 'LOST') run?.abort.abort(new LeaseLost('lease lost to a newer run'));
      else if (verdict === 'ENDED') run?.abort.abort(new TaskEnded('task ended'));
      else if (verdict === 'GONE') run?.abort.abort(new TaskGone('task is gone'));
      else if (verdict === 'CANCEL') run?.abort.abort(new CancelRequested('cancel requested'));
      else if (verdict === 'CORRUPTED' && run) run.abort.abort(new TaskCorrupted(run.taskId, 'its state hash holds the wrong type'));
    }
  }

  /** Takes over commands idle longer than CLAIM_IDLE_MS; one pass at a time. */
  reclaim(): Promise<void> {
    this.pass ??= this.reclaimOnce().finally(() => {
      this.pass = undefined;
      // Unless soon() asked for the next pass meanwhile.
      if (this.dueAt !== 0) this.dueAt = Date.now() + this.interval();
    });
    return this.pass;
  }

  /** Takes the commands of this host's workers that died (a crash before this worker started). */
  async takeOver(): Promise<void> {
    const free = this.free();
    if (free <= 0 || this.deps.closing()) return;
    try {
      await this.adopt(await this.deps.queue.takeOver((name) => isGoneConsumer(name, this.deps.queue.consumer), free), 'took over the command of a dead worker');
      this.takeOvers.ok();
    } catch (err) {
      this.takeOvers.failed(err);
    }
  }

  /** Commands read but not started (closing, or more than free slots): hand them to other workers at once. */
  async handBack(commands: CommandEntry[]): Promise<void> {
    if (commands.length === 0) return;
    await this.deps.queue
      .handBack(commands, this.deps.config.CLAIM_IDLE_MS)
      .catch((err) => this.deps.log.warn({ err }, 'could not hand back commands; they are reclaimed after CLAIM_IDLE_MS'));
  }

  /** Marks commands we stopped at shutdown as idle for CLAIM_IDLE_MS, so others reclaim them now. */
  async release(runs: Running[]): Promise<void> {
    if (runs.length === 0 || !isReady(this.deps.redis)) return;
    try {
      await atMost(this.deps.queue.heartbeat(runs, this.deps.config.CLAIM_IDLE_MS), 1000);
    } catch (err) {
      this.deps.log.warn({ err }, 'could not release commands; they are reclaimed after CLAIM_IDLE_MS');
    }
  }

  private async reclaimOnce(): Promise<void> {
    const { CLAIM_IDLE_MS } = this.deps.config;
    this.dueAt = Date.now() + this.interval();
    const free = this.free();
    if (free <= 0 || this.deps.closing()) return;
    await this.heartbeat();
    try {
      const { entries, deleted, failed } = await this.deps.queue.reclaim(CLAIM_IDLE_MS, free);
      if (deleted.length > 0) this.deps.log.warn({ deleted }, 'pending commands were trimmed away; dropped from the group');
      if (failed.length > 0) this.deps.log.warn({ err: redisTrouble(failed[0]) ? String(failed[0]) : failed[0], nodes: failed.length }, 'reclaim failed on some nodes; the others\' commands were taken');
      await this.adopt(entries, 'reclaimed an idle command');
      this.reclaims.ok();
    } catch (err) {
      this.reclaims.failed(err);
    }
  }

  private interval(): number {
    return Math.max(50, Math.floor(this.deps.config.CLAIM_IDLE_MS / 4));
  }

  private free(): number {
    return this.deps.config.WORKER_CONCURRENCY - this.deps.running.size;
  }

  /**
   * Starts commands taken over (`why` is logged for each), but for those this worker runs already
   * (its heartbeat came late, or a reclaim pass and a takeover of the upkeep took the same one):
   * their delivery is not counted.
   */
  private async adopt(entries: CommandEntry[], why: string): Promise<void> {
    const own = entries.filter((e) => this.deps.running.has(refOf(e)));
    await this.start(entries.filter((e) => !own.includes(e)), why);
    if (own.length > 0) {
      this.deps.log.warn({ commandIds: own.map((e) => e.id) }, 'took back commands it is running (its heartbeat came late); their deliveries are not counted');
      await this.deps.queue.undoDelivery(own);
    }
  }

  /**
   * Dispatches commands taken over, into the slots free now (a pass may end after the read loop
   * filled them, see Worker); the rest, and all of them once closing, are handed back at once,
   * without the delivery their takeover counted.
   */
  private async start(entries: CommandEntry[], why: string): Promise<void> {
    const rest: CommandEntry[] = [];
    for (const entry of entries) {
      if (this.deps.closing() || this.free() <= 0) {
        rest.push(entry);
        continue;
      }
      this.deps.log.info({ commandId: entry.id }, why);
      this.deps.dispatch(entry);
    }
    if (rest.length === 0) return;
    await this.deps.queue.undoDelivery(rest).catch((err) => this.deps.log.warn({ err }, 'could not undo the deliveries of commands handed back'));
    await this.handBack(rest);
  }
}
