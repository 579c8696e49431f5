import { setTimeout as delay } from 'node:timers/promises';
import { Worker, type Job } from 'bullmq';
import { OUTPUT_WINDOW, benchChunk } from './bench-tasks.js';

/**
 * The BullMQ worker of the comparison: four progress updates per job, each after `stage_ms`; or,
 * for a job with `chunks`, one progress update per output chunk, as taskcast's `burst` task
 * outputs them (same chunks, same window of updates on their way).
 */
async function output(job: Job, chunks: number, bytes: number): Promise<void> {
  let written: Promise<void> = Promise.resolve();
  for (let i = 0; i < chunks; i++) {
    written = job.updateProgress({ i, chunk: benchChunk(i, bytes) });
    if (i % OUTPUT_WINDOW === OUTPUT_WINDOW - 1) await written;
  }
  await written;
}

const connection = { host: '127.0.0.1', port: Number(process.env.BULL_REDIS_PORT) };
const worker = new Worker(
  'bench',
  async (job) => {
    const { chunks, bytes } = job.data as { chunks?: number; bytes?: number };
    if (chunks !== undefined) return output(job, chunks, bytes ?? 20);
    const stageMs = Number((job.data as { stage_ms?: number }).stage_ms ?? 0);
    for (const progress of [25, 50, 75, 100]) {
      if (stageMs > 0) await delay(stageMs);
      await job.updateProgress({ progress, ts: Date.now() });
    }
  },
  { connection, concurrency: Number(process.env.WORKER_CONCURRENCY ?? 50) },
);
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
