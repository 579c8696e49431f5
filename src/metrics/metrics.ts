import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from '../logger.js';
import { groupLag, pendingCommands } from '../store/queue-stats.js';
import type { Redis } from '../store/redis.js';
import type { WireEvent } from '../store/events.js';
import type { TerminalStatus } from '../wire/events.js';

/** Names of the transports a watcher can use; the `transport` label takes only these values. */
export type Transport = 'ws' | 'sse';

/** Terminal statuses that have their own counter. */

const PREFIX = 'taskcast_';
/** Latencies on one host are sub-millisecond to a few seconds. */
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Tasks and stages run from milliseconds to many minutes. */
const DURATION_BUCKETS_S = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * The Prometheus metrics of one process, in a registry of its own (never prom-client's global
 * one). Labels are bounded: task type (a registered name), stage status, transport, route
 * pattern, method and status code. Task ids never appear in labels.
 */
export class Metrics {
  readonly registry = new Registry();
  private queueSource: { redis: Redis; logger: Logger } | undefined;
  private hubSource: { readonly watchedStreams: number } | undefined;

  private readonly finished: Record<TerminalStatus, Counter<'type'>>;
  private readonly tasksStarted: Counter<'type'>;
  private readonly taskDuration: Histogram<'type' | 'status'>;
  private readonly stageDuration: Histogram<'type' | 'stage'>;
  private readonly connections: Gauge<'transport'>;
  private readonly delivered: Counter<'transport'>;
  private readonly replayed: Counter<'transport'>;
  private readonly deliveryLatency: Histogram<'transport'>;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status'>;

  constructor() {
    const registers = [this.registry];
    const counter = (name: string, help: string) =>
      new Counter({ name: PREFIX + name, help, labelNames: ['type'] as const, registers });
    this.tasksStarted = counter('tasks_started_total', 'Tasks accepted by POST /tasks, by task type.');
    this.finished = {
      COMPLETED: counter('tasks_completed_total', 'Tasks that ended COMPLETED, by task type.'),
      FAILED: counter('tasks_failed_total', 'Tasks that ended FAILED, by task type.'),
      CANCELLED: counter('tasks_cancelled_total', 'Tasks that ended CANCELLED, by task type.'),
    };
    this.taskDuration = new Histogram({
      name: `${PREFIX}task_duration_seconds`,
      help: 'From the start request to the terminal event, by task type and terminal status.',
      labelNames: ['type', 'status'] as const,
      buckets: DURATION_BUCKETS_S,
      registers,
    });
    this.stageDuration = new Histogram({
      name: `${PREFIX}stage_duration_seconds`,
      help: 'Time a worker spent on one stage (its work plus the append), by task type and stage status.',
      labelNames: ['type', 'stage'] as const,
      buckets: DURATION_BUCKETS_S,
      registers,
    });
    this.connections = new Gauge({
      name: `${PREFIX}open_connections`,
      help: 'Watch connections open now, by transport (ws, sse).',
      labelNames: ['transport'] as const,
      registers,
    });
    this.delivered = new Counter({
      name: `${PREFIX}events_delivered_total`,
      help: 'Events sent to watchers (replayed and live), by transport.',
      labelNames: ['transport'] as const,
      registers,
    });
    this.replayed = new Counter({
      name: `${PREFIX}events_replayed_total`,
      help: 'Events sent to watchers that were already in the log when the watch opened, by transport.',
      labelNames: ['transport'] as const,
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: `${PREFIX}event_delivery_latency_seconds`,
      help: "From an event's append (its ts) to its send to a watcher; live events only, by transport.",
      labelNames: ['transport'] as const,
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.httpDuration = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'HTTP requests by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    const metrics = this;
    new Gauge({
      name: `${PREFIX}hub_streams`,
      help: "Task streams in the gateway hub's shared read now (watched and not ended); no sample without a hub.",
      registers,
      collect() {
        this.reset();
        if (metrics.hubSource) this.set(metrics.hubSource.watchedStreams);
      },
    });
    this.queueGauges(registers);
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  /** Gauges read from Redis when scraped; without a source, or while Redis is down, they have no sample. */
  private queueGauges(registers: Registry[]): void {
    const metrics = this;
    const labelNames = ['stream', 'group'] as const;
    new Gauge({
      name: `${PREFIX}pending_commands`,
      help: 'Commands delivered to a worker and not yet acknowledged (XPENDING count), per commands stream (priority).',
      labelNames,
      registers,
      async collect() {
        this.reset();
        for (const { labels, value } of (await metrics.readQueue(pendingCommands)) ?? []) this.set(labels, value);
      },
    });
    new Gauge({
      name: `${PREFIX}consumer_group_lag`,
      help: 'Commands in the stream not yet delivered to any worker (XINFO GROUPS lag), per commands stream (priority).',
      labelNames,
      registers,
      async collect() {
        this.reset();
        for (const { labels, value } of (await metrics.readQueue(groupLag)) ?? []) this.set(labels, value);
      },
    });
  }

  private async readQueue<T>(read: (redis: Redis) => Promise<T>): Promise<T | undefined> {
    const source = this.queueSource;
    if (!source) return undefined;
    try {
      return await read(source.redis);
    } catch (err) {
      source.logger.debug({ err: (err as Error).message }, 'queue metrics unavailable');
      return undefined;
    }
  }

  /** Makes the hub_streams gauge report `hub` (a gateway's). */
  trackHub(hub: { readonly watchedStreams: number }): void {
    this.hubSource = hub;
  }

  /** Makes the queue gauges read from `redis` (a client its owner keeps open while serving). */
  trackQueue(redis: Redis, logger: Logger): void {
    this.queueSource = { redis, logger };
  }

  taskStarted(type: string): void {
    this.tasksStarted.inc({ type });
  }

  /** A terminal event was recorded; `startedAtMs` is when the task was created. */
  taskFinished(type: string, status: TerminalStatus, startedAtMs: number, nowMs = Date.now()): void {
    this.finished[status].inc({ type });
    this.taskDuration.observe({ type, status }, Math.max(0, nowMs - startedAtMs) / 1000);
  }

  stageDone(type: string, stage: string, seconds: number): void {
    this.stageDuration.observe({ type, stage }, seconds);
  }

  connectionOpened(transport: Transport): void {
    this.connections.inc({ transport });
  }

  connectionClosed(transport: Transport): void {
    this.connections.dec({ transport });
  }

  /** An event was handed to a watcher's socket; `replayed` when it predates the watch. */
  eventSent(transport: Transport, event: WireEvent, replayed: boolean, nowMs = Date.now()): void {
    this.delivered.inc({ transport });
    if (replayed) this.replayed.inc({ transport });
    else this.deliveryLatency.observe({ transport }, Math.max(0, nowMs - event.ts) / 1000);
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpDuration.observe({ method, route, status: String(status) }, seconds);
  }

  /** The Prometheus text exposition of every metric. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
