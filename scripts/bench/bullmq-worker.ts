import { setTimeout as delay } from 'node:timers/promises';
import { Worker } from 'bullmq';

/** The BullMQ worker of the comparison: four progress updates per job, each after `stage_ms`. */
const connection = { host: '127.0.0.1', port: Number(process.env.BULL_REDIS_PORT) };
const worker = new Worker(
  'bench',
  async (job) => {
    const stageMs = Number((job.data as { stage_ms?: number }).stage_ms ?? 0);
    for (const progress of [25, 50, 75, 100]) {
      if (stageMs > 0) await delay(stageMs);
      await job.updateProgress({ progress, ts: Date.now() });
    }
  },
  { connection, concurrency: Number(process.env.WORKER_CONCURRENCY ?? 50) },
);
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
