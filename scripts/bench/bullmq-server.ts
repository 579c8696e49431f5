import { createServer } from 'node:http';
import Koa from 'koa';
import { Queue, QueueEvents } from 'bullmq';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * The BullMQ equivalent the issue compares against: Koa and ws in front of BullMQ. POST /tasks
 * adds a job (body `{"stage_ms": n}`, or `{"chunks": n, "bytes": b}` for an output job); every
 * socket is fed from one QueueEvents (progress 25/50/75/100 or one output chunk per progress
 * update, closed on 'completed'). A socket that connects after the job completed is told so from
 * the job state.
 */
const connection = { host: '127.0.0.1', port: Number(process.env.BULL_REDIS_PORT) };
const queue = new Queue('bench', { connection });
const events = new QueueEvents('bench', { connection });
const sockets = new Map<string, Set<WebSocket>>();
const STATUS: Record<number, string> = { 25: 'STARTED', 50: 'PROCESSING', 75: 'CONCLUDING', 100: 'COMPLETED' };

function send(jobId: string, status: string, progress: number, ts = Date.now()): void {
  const json = JSON.stringify({ task_id: jobId, status, progress, ts });
  for (const ws of sockets.get(jobId) ?? []) ws.send(json);
}
function finish(jobId: string): void {
  for (const ws of sockets.get(jobId) ?? []) ws.close(1000, 'task finished');
  sockets.delete(jobId);
}
// The worker reports { progress, ts }: ts is when it made the update, like taskcast's event ts.
events.on('progress', ({ jobId, data }) => {
  const { progress, ts, i, chunk } = data as { progress: number; ts: number; i?: number; chunk?: string };
  if (chunk !== undefined) {
    const json = JSON.stringify({ task_id: jobId, type: 'output', i, chunk });
    for (const ws of sockets.get(jobId) ?? []) ws.send(json);
    return;
  }
  send(jobId, STATUS[progress] ?? 'PROCESSING', progress, ts);
});
events.on('completed', ({ jobId }) => finish(jobId));

const app = new Koa();
app.use(async (ctx) => {
  if (ctx.method !== 'POST' || ctx.path !== '/tasks') {
    ctx.status = 404;
    return;
  }
  let body = '';
  for await (const chunk of ctx.req) body += String(chunk);
  const parsed = JSON.parse(body || '{}') as { stage_ms?: number; chunks?: number; bytes?: number };
  const job = parsed.chunks === undefined
    ? await queue.add('reference', { stage_ms: Number(parsed.stage_ms ?? 0) })
    : await queue.add('output', { chunks: parsed.chunks, bytes: parsed.bytes });
  ctx.status = 202;
  ctx.body = { task_id: job.id, status: 'PENDING', progress: 0 };
});
const server = createServer(app.callback());
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const jobId = (req.url ?? '').split('/').pop()?.split('?')[0] ?? '';
  wss.handleUpgrade(req, socket, head, (ws) => {
    let set = sockets.get(jobId);
    if (!set) sockets.set(jobId, (set = new Set()));
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    ws.send(JSON.stringify({ task_id: jobId, status: 'PENDING', progress: 0, ts: Date.now() }));
    void queue.getJobState(jobId).then((state) => {
      if (state === 'completed') {
        send(jobId, 'COMPLETED', 100);
        finish(jobId);
      }
    });
  });
});
await events.waitUntilReady();
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  void Promise.all([events.close(), queue.close()]).then(() => process.exit(0));
});
