import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';

/**
 * The throughput ceiling: a server that does no work. POST answers 202 at once; a watch socket
 * gets the five events of a reference task on connect, then close 1000. Same HTTP and WebSocket
 * stack as the gateway, so the load generator's cost is measured against the same protocol work.
 */
const STAGES: [string, number][] = [['PENDING', 0], ['STARTED', 25], ['PROCESSING', 50], ['CONCLUDING', 75], ['COMPLETED', 100]];

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ task_id: randomUUID(), status: 'PENDING', progress: 0 });
    res.writeHead(202, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const taskId = (req.url ?? '').split('/').pop()?.split('?')[0] ?? '';
  wss.handleUpgrade(req, socket, head, (ws) => {
    const now = Date.now();
    STAGES.forEach(([status, progress], i) => ws.send(JSON.stringify({ id: `${now}-${i}`, task_id: taskId, status, progress, ts: now })));
    ws.close(1000, 'task finished');
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
