import type { Cluster } from 'ioredis';
import { COMMANDS_STREAM, WORKER_GROUP, keyIn } from './keys.js';
import { layoutOf } from './layout.js';
import type { Redis } from './redis.js';

/**
 * What readiness asks of Redis: PINGs, then tells whether the consumer group exists on the
 * commands stream of every partition (false also when a stream is missing) and why Redis would
 * refuse writes now, if it would (writeRefusal; on a cluster, the first master that would).
 */
export async function inspect(redis: Redis): Promise<{ group: boolean; refused: string | undefined }> {
  await redis.ping();
  const nodes = redis.isCluster ? ((redis as unknown as Cluster).nodes('master') as unknown as Redis[]) : [redis];
  const refusals = await Promise.all(nodes.map(async (node) => writeRefusal(await node.info())));
  const streams = layoutOf(redis).partitions.map((p) => keyIn(p, COMMANDS_STREAM));
  const found = await Promise.all(streams.map((stream) => hasGroup(redis, stream)));
  return { group: found.every(Boolean), refused: refusals.find((r) => r !== undefined) };
}

async function hasGroup(redis: Redis, stream: string): Promise<boolean> {
  try {
    const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
    return groups.some((g) => g[g.indexOf('name') + 1] === WORKER_GROUP);
  } catch (err) {
    if (/no such key/i.test(String(err))) return false;
    throw err;
  }
}

/**
 * Why Redis refuses writes now, from INFO: LOADING (loading its data set), READONLY (a replica),
 * MISCONF (the last RDB save failed while stop-writes-on-bgsave-error is on, or the AOF write
 * failed), OOM (used memory at maxmemory with the noeviction policy); undefined when it takes them.
 */
export function writeRefusal(info: string): string | undefined {
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  if (field('loading') === '1') return 'LOADING';
  if (field('role') === 'slave') return 'READONLY';
  if (field('aof_last_write_status') === 'err' || field('rdb_last_bgsave_status') === 'err') return 'MISCONF';
  const max = Number(field('maxmemory') ?? 0);
  if (max > 0 && field('maxmemory_policy') === 'noeviction' && Number(field('used_memory') ?? 0) >= max) return 'OOM';
  return undefined;
}
