import { Worker } from 'bullmq';

/** The BullMQ worker of the comparison: four progress updates per job, stage_ms 0. */
const connection = { host: '127.0.0.1', port: Number(process.env.BULL_REDIS_PORT) };
const worker = new Worker(
  'bench',
  async (job) => {
    for (const progress of [25, 50, 75, 100]) await job.updateProgress(progress);
  },
  { connection, concurrency: Number(process.env.WORKER_CONCURRENCY ?? 50) },
);
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
