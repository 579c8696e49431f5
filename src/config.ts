import { z } from 'zod';

/**
 * An integer in [min, max], from a string of digits: an empty value is an error, never 0. Every
 * error (not a number, a fraction, out of range) names the range.
 */
const int = (min: number, max: number) =>
  z.preprocess(
    (value) => (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value),
    z.number({ error: `expected an integer from ${min} to ${max}` }).int().min(min).max(max),
  );
/** A comma-separated list; blanks around items and empty items are dropped. */
const csv = z.string().transform((text) => text.split(',').map((item) => item.trim()).filter(Boolean));

/** Origins as browsers send them (`scheme://host[:port]`, a trailing `/` allowed), comma-separated. */
const origins = csv.superRefine((items, ctx) => {
  for (const item of items) {
    if (!isOrigin(item)) ctx.addIssue({ code: 'custom', message: `expected origins (scheme://host[:port]), got ${JSON.stringify(item)}` });
  }
});

/** `text` is an origin and nothing more: a path, a query or a user would show in its URL after the origin. */
function isOrigin(text: string): boolean {
  const url = URL.parse(text);
  return url !== null && url.origin !== 'null' && url.href === `${url.origin}/`;
}

/** `name=limit` pairs, comma-separated: task type name -> an integer of at least 1. */
const limits = z.string().transform((text, ctx) => {
  const out: Record<string, number> = {};
  for (const item of text.split(',').map((i) => i.trim()).filter(Boolean)) {
    const m = /^([^=\s]+)\s*=\s*(\d{1,9})$/.exec(item);
    if (!m || Number(m[2]) < 1) {
      ctx.addIssue({ code: 'custom', message: `expected name=limit pairs (limit an integer >= 1), got ${JSON.stringify(item)}` });
      return z.NEVER;
    }
    if (m[1]! in out) {
      ctx.addIssue({ code: 'custom', message: `${m[1]} is given twice` });
      return z.NEVER;
    }
    out[m[1]!] = Number(m[2]);
  }
  return out;
});

/** `host:port` pairs, comma-separated (IPv6 hosts in brackets): at least one. */
const nodes = z.string().transform((text, ctx) => {
  const out: { host: string; port: number }[] = [];
  for (const item of text.split(',').map((i) => i.trim()).filter(Boolean)) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(item);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `expected host:port pairs, got ${JSON.stringify(item)}` });
      return z.NEVER;
    }
    out.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
  }
  if (out.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'expected at least one host:port' });
    return z.NEVER;
  }
  return out;
});

/** Every setting, read from environment variables. Units are part of the names. */
export const configSchema = z.object({
  REDIS_URL: z
    .string()
    .url()
    .refine((url) => /^rediss?:\/\//.test(url), 'expected a redis:// or rediss:// URL')
    .optional(),
  /**
   * Seed nodes of a Redis Cluster (`host:port,...`): cluster mode (README "Redis Cluster"). Unset:
   * one Redis at REDIS_URL. Setting both is an error.
   */
  REDIS_CLUSTER_NODES: nodes.optional(),
  /** How long a start waits for a cluster's seed nodes to answer before it exits naming REDIS_CLUSTER_NODES. */
  REDIS_CLUSTER_CONNECT_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /**
   * Cluster mode: a start, cancel or event counts as written once this many replicas of its
   * master have it (WAIT), so a failover cannot lose it; 0 turns the wait, and the gateway's reads
   * from replicas, off. Use the number of replicas per master (README "Redis Cluster").
   */
  REDIS_CLUSTER_WAIT_REPLICAS: int(0, 16).default(1),
  /** How long a write waits for those replicas; a write not confirmed in time is retried (worker) or answered 503 (gateway). */
  REDIS_CLUSTER_WAIT_TIMEOUT_MS: int(1, 60_000).default(2000),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (tests). */
  PORT: int(0, 65535).default(8000),
  /** Default time per stage of the reference task; the reference runs 4 stages. */
  STAGE_MS: int(0, 600_000).default(5000),
  /** Tasks one worker process runs at once. */
  WORKER_CONCURRENCY: int(1, 10_000).default(16),
  /** How long a finished task's keys live. */
  TASK_TTL_S: int(1, 365 * 86400).default(86400),
  /**
   * How long a start's Idempotency-Key answers with the task it started (capped at TASK_TTL_S,
   * so that the task outlives its key).
   */
  IDEMPOTENCY_TTL_S: int(1, 365 * 86400).default(86400),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** A command pending this long without a heartbeat is reclaimed by another worker. */
  CLAIM_IDLE_MS: int(100, 3_600_000).default(30_000),
  /**
   * A consumer of the workers group with no pending command, unseen this long, is removed: its
   * worker is gone. Removing one that holds nothing is always safe (Redis re-creates a consumer
   * when it next reads a command); the bound only keeps idle live workers from churning.
   */
  CONSUMER_PRUNE_IDLE_MS: int(10_000, 30 * 86_400_000).default(3_600_000),
  /** Approximate length the commands stream is trimmed to (never below its oldest pending entry). */
  COMMANDS_MAXLEN: int(100, 100_000_000).default(100_000),
  /** WebSocket ping interval; a socket that misses its pong by the next ping is terminated. */
  WS_PING_MS: int(10, 3_600_000).default(25_000),
  /** A socket whose send buffer grows past this is closed with 4008 (slow consumer). */
  WS_MAX_BUFFERED_BYTES: int(1024, 1024 * 1024 * 1024).default(1024 * 1024),
  /**
   * A replay waits for the watcher to read whenever more than WS_MAX_BUFFERED_BYTES are unsent;
   * a watcher that reads nothing for this long is closed as a slow consumer (4008, or the SSE
   * stream ends).
   */
  WS_REPLAY_STALL_MS: int(100, 3_600_000).default(10_000),
  /** Subscriptions one connection of the multiplexed `/ws` may hold at once; past it a subscribe ends with 4429. */
  WS_MAX_SUBSCRIPTIONS: int(1, 1_000_000).default(1000),
  /**
   * Messages a `/ws` client may send: a bucket of WS_MESSAGE_BURST refilled at WS_MESSAGES_PER_S
   * (the burst lets a client resubscribe WS_MAX_SUBSCRIPTIONS tasks at once after a reconnect).
   */
  WS_MESSAGE_BURST: int(1, 10_000_000).default(2000),
  WS_MESSAGES_PER_S: z.coerce.number().min(0.001).max(1_000_000).default(100),
  /**
   * Upper bound of the hub's blocking XREAD. Correctness never depends on it: new streams wake the
   * reader at once (CLIENT UNBLOCK); it only bounds how long a read on idle streams stays parked.
   */
  HUB_BLOCK_MS: int(1, 3_600_000).default(10_000),
  /** How long shutdown waits for running work before leaving it to others. */
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  /**
   * After a shutdown signal, how long the gateway keeps serving with /readyz answering 503 before
   * it stops accepting connections, so load balancers take it out of rotation first.
   */
  SHUTDOWN_READY_DELAY_MS: int(0, 600_000).default(0),
  /**
   * After a cancel, how long a handler may take to stop by itself (its signal fired); past it the
   * worker records CANCELLED without it and ignores whatever it does afterwards.
   */
  CANCEL_GRACE_MS: int(0, 600_000).default(5000),
  /** How far ahead a start may be scheduled (`run_at`, `delay_ms`); further is a 400. */
  SCHEDULE_MAX_AHEAD_S: int(1, 10 * 365 * 86400).default(30 * 86400),
  /** How often each worker promotes due scheduled tasks (their command is visible within about this). */
  SCHEDULE_POLL_MS: int(10, 60_000).default(250),
  /**
   * Per-deployment concurrency limits by task type, e.g. `report=2,email=10`: overrides the types'
   * `concurrency` (running tasks of the type across all workers). Workers must agree on it.
   */
  TASK_CONCURRENCY: limits.default({}),
  /** Runs of a task whose handler throws, the first included; each retry records RETRYING. */
  MAX_ATTEMPTS: int(1, 100).default(3),
  /** Backoff before attempt n (2 for the first retry) is RETRY_BASE_MS * 2^(n-2), capped at RETRY_MAX_MS, its upper half random. */
  RETRY_BASE_MS: int(0, 3_600_000).default(1000),
  RETRY_MAX_MS: int(0, 3_600_000).default(30_000),
  /** A command delivered more often than this (its workers keep dying) goes to `tasks:dead`. */
  MAX_DELIVERIES: int(1, 1000).default(5),
  /**
   * Entries each feed (`tasks:feed`, `tasks:feed:tag:<tag>`) keeps: between this and 100 more (a
   * script that leaves one longer trims it back to this). A cursor older than what a feed still holds is told to
   * reload (README "Feed of task changes"). At least the hub's read batch (100), so a live read
   * that meets trimmed entries always comes back full.
   */
  FEED_MAXLEN: int(100, 1_000_000_000).default(100_000),
  /** Progress changes of one task reach the feeds at most once per this many ms; status changes always do. */
  FEED_PROGRESS_MS: int(0, 3_600_000).default(250),
  /** Approximate length the dead-letter stream `tasks:dead` is trimmed to. */
  DEAD_LETTER_MAXLEN: int(1, 100_000_000).default(10_000),
  /** Largest result a handler may return (serialized JSON, bytes); a larger one ends the task FAILED. */
  RESULT_MAX_BYTES: int(1, 16 * 1024 * 1024).default(65_536),
  /** Largest chunk `ctx.output` takes (text, or a record's JSON, in UTF-8 bytes); a larger one throws. */
  OUTPUT_CHUNK_MAX_BYTES: int(1, 16 * 1024 * 1024).default(65_536),
  /**
   * Extra task-type modules to load, comma-separated paths (relative to the working directory).
   * Each default-exports a task type or an array of them; gateway and workers need the same list.
   */
  TASK_MODULES: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((p) => p.trim()).filter((p) => p !== '')),
  /** `npm start`'s private redis-server (no REDIS_URL, nothing on DEV_REDIS_PROBE_PORT): its data directory. */
  DEV_REDIS_DIR: z.string().min(1).default('data'),
  /** Its port when the data directory remembers none yet; the next free one when taken. */
  DEV_REDIS_PORT: int(1, 65535).default(6380),
  /** A Redis answering here is used instead of the private one; 0: always the private one. */
  DEV_REDIS_PROBE_PORT: int(0, 65535).default(6379),
  /** Port of the worker's probe server (/livez, /readyz, /healthz); 0 picks a free port (logged). */
  HEALTH_PORT: int(0, 65535).default(8001),

  // Security (README "Threat model"). Authentication is off unless API_TOKENS is set.
  /** Comma-separated bearer tokens for starting, cancelling and listing tasks; empty = auth off. */
  API_TOKENS: csv.default([]),
  /** HMAC key for watch tokens; required (>= 32 chars) when API_TOKENS is set. */
  TOKEN_SECRET: z.string().min(32).optional(),
  /** How long a watch token returned by a start stays valid. */
  WATCH_TOKEN_TTL_S: int(1, 365 * 86400).default(86400),
  /** Extra origins (scheme://host[:port]) allowed to open WebSockets; empty = same-origin and localhost. */
  ALLOWED_ORIGINS: origins.default([]),
  /** Open WebSockets per client address, and in all; the next one gets 503. */
  WS_MAX_PER_IP: int(1, 1_000_000).default(1000),
  WS_MAX_TOTAL: int(1, 10_000_000).default(10_000),
  /** Task starts per client (API token, or address without auth): bucket size and refill rate. */
  START_BURST: int(1, 1_000_000).default(100),
  START_REFILL_PER_S: z.coerce.number().min(0.001).max(1_000_000).default(20),
  /** Proxies in front of the gateway whose X-Forwarded-For entries are trusted; 0 = none. */
  TRUST_PROXY_HOPS: int(0, 10).default(0),
  /** Slowloris cut: time to receive the headers, and the whole request. */
  HTTP_HEADERS_TIMEOUT_MS: int(100, 600_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
}).refine((c) => c.API_TOKENS.length === 0 || c.TOKEN_SECRET !== undefined, {
  path: ['TOKEN_SECRET'],
  message: 'required (at least 32 characters) when API_TOKENS is set',
}).refine((c) => c.REDIS_URL === undefined || c.REDIS_CLUSTER_NODES === undefined, {
  path: ['REDIS_CLUSTER_NODES'],
  message: 'set either REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a cluster), not both',
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

/** A ConfigError for `name`'s value `value`, in loadConfig's format. */
export function configError(name: string, value: string, problem: string): ConfigError {
  return new ConfigError(`invalid configuration:\n  ${name}=${JSON.stringify(value)}: ${problem}`);
}

/**
 * What a failed listen on HOST means: HOST names no address of this machine (it does not resolve,
 * or is not local) is a ConfigError naming it; any other error (e.g. the port is taken) is `err`.
 */
export function listenError(err: unknown, host: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOTFOUND' && code !== 'EADDRNOTAVAIL') return err;
  return configError('HOST', host, `cannot listen there (${(err as Error).message})`);
}

/** Parses the environment once; a bad value throws a ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = configSchema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map(
    (issue) => `${issue.path.join('.')}=${JSON.stringify(env[String(issue.path[0])])}: ${issue.message}`,
  );
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}
