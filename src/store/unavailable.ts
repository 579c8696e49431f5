/**
 * The one classifier of Redis trouble, for gateway and worker alike:
 * - `down`: no answer (connection refused, reset or closed, ioredis gave up on the command, or
 *   the command timed out: a cluster node that hangs, see redis.ts);
 * - `refused`: Redis answered but refuses to serve for now: out of memory (OOM), a replica
 *   (READONLY), loading its data (LOADING), failing to persist (MISCONF), busy with a script
 *   (BUSY), a cluster in transition (TRYAGAIN, CLUSTERDOWN, MASTERDOWN), a write not confirmed
 *   on replicas in time (NOREPLICAS, see replication.ts), or a blocked read ended by the server
 *   (UNBLOCKED: it turned replica, or the key left it in a slot move, see isSlotMoving).
 * Either way the same call may succeed later: callers answer 503 or retry; anything else is a bug
 * or bad data, and is not retried.
 */
export type RedisTrouble = 'down' | 'refused';

const DOWN = /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|MaxRetriesPerRequest|enableOfflineQueue|Connection ended|Command timed out/i;
/** Redis's error words, as replies start with them (inside a script's error too). */
const REFUSED = /\b(OOM|READONLY|LOADING|MISCONF|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOREPLICAS|UNBLOCKED) /;

export function redisTrouble(err: unknown): RedisTrouble | null {
  if (!(err instanceof Error)) return null;
  if (DOWN.test(err.message)) return 'down';
  if (REFUSED.test(err.message)) return 'refused';
  return null;
}

/** The reason word of a `refused` error (OOM, READONLY, ...), for messages and logs. */
export function refusalReason(err: Error): string {
  return REFUSED.exec(err.message)?.[1] ?? 'REFUSED';
}
