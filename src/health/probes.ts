import { isReady, type Redis } from '../store/redis.js';
import { inspect } from '../store/health-reads.js';
import { atMost } from '../at-most.js';
import { AppError, errorBody } from '../errors.js';

/** What a probe answers: an HTTP status and a small JSON body. */
export interface ProbeReply {
  status: 200 | 503;
  body: {
    status: 'ok' | 'unavailable';
    checks?: {
      redis: 'ok' | 'down';
      group: 'ok' | 'missing' | 'unknown';
      draining: boolean;
      /** Whether Redis takes writes now; `refused` with the reason (OOM, READONLY, LOADING, MISCONF). */
      writes: 'ok' | 'refused' | 'unknown';
      refused?: string;
    };
  };
}

export interface HealthDeps {
  /** The process's main client; readiness asks it for PING and the consumer group. */
  redis: Redis;
  /** A check slower than this counts as Redis down (a client with an offline queue would wait). */
  timeoutMs?: number;
}

/** Probe paths, the same on the gateway and on the worker's health port. `/healthz` = `/readyz`. */
export const PROBE_PATHS = ['/livez', '/readyz', '/healthz'] as const;
/** The methods the probes answer; another is 405 with these in `Allow` (wrongMethod). */
export const PROBE_METHODS: readonly string[] = ['GET', 'HEAD'];

/** The answer to a probe called with another method than PROBE_METHODS. */
export function wrongMethod(): { status: number; headers: Record<string, string>; body: ReturnType<typeof errorBody> } {
  return { status: 405, headers: { allow: PROBE_METHODS.join(', ') }, body: errorBody(new AppError('METHOD_NOT_ALLOWED', 'probes answer GET and HEAD only')) };
}

/**
 * Liveness and readiness of one process. Live: the process answers. Ready: Redis answers PING,
 * the `workers` group exists on `tasks:commands` (every partition's, in cluster mode), and the
 * process is not draining for shutdown.
 */
export class HealthProbes {
  private draining = false;

  constructor(private readonly deps: HealthDeps) {}

  /** From now on readiness answers 503, so load balancers stop routing here during shutdown. */
  drain(): void {
    this.draining = true;
  }

  live(): ProbeReply {
    return { status: 200, body: { status: 'ok' } };
  }

  async ready(): Promise<ProbeReply> {
    const { redis } = this.deps;
    const checks: NonNullable<ProbeReply['body']['checks']> = { redis: 'down', group: 'unknown', draining: this.draining, writes: 'unknown' };
    if (isReady(redis)) {
      try {
        const result = await atMost(inspect(redis), this.deps.timeoutMs ?? 1000);
        if (result !== undefined) {
          checks.redis = 'ok';
          checks.group = result.group ? 'ok' : 'missing';
          checks.writes = result.refused ? 'refused' : 'ok';
          if (result.refused) checks.refused = result.refused;
        }
      } catch {
        checks.redis = 'down';
      }
    }
    const ok = checks.redis === 'ok' && checks.group === 'ok' && checks.writes === 'ok' && !checks.draining;
    return { status: ok ? 200 : 503, body: { status: ok ? 'ok' : 'unavailable', checks } };
  }

  /** The reply for a probe path, or undefined when `path` is not a probe. */
  async probe(path: string): Promise<ProbeReply | undefined> {
    if (path === '/livez') return this.live();
    if (path === '/readyz' || path === '/healthz') return this.ready();
    return undefined;
  }
}
