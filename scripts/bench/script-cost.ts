import { ensureGroup } from '../../src/store/consumer-group.js';
import { COMMANDS_STREAM, WORKER_GROUP } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { TaskWrites } from '../../src/store/task-writes.js';
import { round } from './load.js';
import { costDelta, redisCounters } from './procs.js';

/**
 * What one event costs Redis by the size of the group commit that carries it: `tasks` tasks get
 * their four events through append-events.lua in batches of `batch` items, with nothing else
 * running. Reports Redis CPU (all of it, I/O included) and the script's own time per event.
 */
export async function scriptCost(redis: Redis, tasks: number, batch: number): Promise<Record<string, number>> {
  await ensureGroup(redis);
  const store = new TaskStore(redis, { ttlS: 600 });
  const consumer = `script-cost-${batch}`;
  const ids = await Promise.all(Array.from({ length: tasks }, () => store.start('reference', {})));
  await redis.xreadgroup('GROUP', WORKER_GROUP, consumer, 'COUNT', tasks, 'STREAMS', COMMANDS_STREAM, '>');
  const writes = new TaskWrites(redis, { consumer, ttlS: 600, maxDeliveries: 5, maxBatch: batch });
  await Promise.all(ids.map((s, i) => writes.claim({ taskId: s.state.task_id, lease: `L${i}`, commandId: s.commandId })));
  const before = await redisCounters(redis);
  for (let step = 1; step <= 4; step++) {
    const terminal = step === 4;
    const replies = await Promise.all(
      ids.map((s, i) =>
        writes.append({
          taskId: s.state.task_id, lease: `L${i}`, commandId: s.commandId, firstSeq: step,
          events: [{
            kind: 'stage', step: terminal ? undefined : step, terminal,
            status: terminal ? 'COMPLETED' : `STAGE_${step}`, progress: step * 25, ts: Date.now(),
          }],
        }),
      ),
    );
    // Every event must be recorded, or the figures would count refusals (e.g. a worker that ran).
    const refused = replies.filter(([result]) => result !== 'OK').length;
    if (refused > 0) throw new Error(`script cost: ${refused} of ${tasks} events at step ${step} were not recorded`);
  }
  const cost = costDelta(before, await redisCounters(redis));
  const events = tasks * 4;
  return {
    batch,
    events,
    redis_cpu_us_per_event: round(cost.cpu_us / events),
    script_us_per_event: round((cost.usec_by_command.evalsha ?? 0) / events),
    script_calls: cost.by_command.evalsha ?? 0,
  };
}
