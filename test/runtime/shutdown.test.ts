import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { request, startTask } from '../helpers/http.js';
import { startGatewayProc, type ServiceProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { oneShot, waitFor, withTimeout } from '../helpers/wait.js';
import { appendHistory } from '../helpers/append.js';
import { sseUrl, stuckReader, watchSse } from '../helpers/sse-client.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';
import { eventIds } from '../helpers/task-log.js';

const BODY = JSON.stringify({ stage_ms: 0 });

/**
 * A POST /tasks whose body is only half sent: the request is in flight until `finish()`. It is
 * known to be in the server's hands once a later request on another connection was answered.
 */
async function halfSentStart(gateway: ServiceProc): Promise<{
  finish(): void;
  response: Promise<{ status: number; body: string }>;
  closed: Promise<void>;
}> {
  const req: ClientRequest = httpRequest(`${gateway.url}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY), connection: 'close' },
  });
  const closed = new Promise<void>((resolve) => req.once('close', () => resolve()));
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('response', (res: IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.once('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.once('error', reject);
  });
  response.catch(() => undefined);
  req.flushHeaders();
  req.write(BODY.slice(0, 5));
  assert.equal((await request(`${gateway.url}/tasks/${crypto.randomUUID()}`)).status, 404);
  return { finish: () => req.end(BODY.slice(5)), response, closed };
}

async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url);
    return false;
  } catch (err) {
    return /ECONNREFUSED/.test(String((err as { cause?: unknown }).cause ?? err));
  }
}

test('SIGTERM: sockets get 1001, new connections are refused, in-flight requests finish, exit 0', async (t) => {
  const redisUrl = await testRedisUrl();
  const redis = await redisFor(t, redisUrl);
  // No worker: the task stays PENDING, so its watch stays open until the gateway closes it.
  const gateway = await startGatewayProc(t, redisUrl, { SHUTDOWN_GRACE_MS: '20000' });
  const taskId = await startTask(gateway.url);
  const first = oneShot();
  const watching = watchTask(wsUrl(gateway.url, taskId), { onEvent: first.fire });
  await withTimeout(first.fired, 'the PENDING event');
  const inFlight = await halfSentStart(gateway);

  gateway.kill('SIGTERM');
  const watched = await watching;
  assert.equal(watched.code, 1001);
  assert.equal(watched.reason, 'server shutting down');
  assert.deepEqual(watched.events.map((e) => e.status), ['PENDING']);
  await waitFor(() => refused(`${gateway.url}/openapi.json`), 'new connections to be refused');
  assert.equal(gateway.child.exitCode, null, 'still running: a request is in flight');

  inFlight.finish();
  const res = await inFlight.response;
  assert.equal(res.status, 202);
  const started = JSON.parse(res.body) as { task_id: string; last_event_id: string };
  assert.deepEqual(await eventIds(redis, started.task_id), [started.last_event_id]);

  assert.equal(await withTimeout(gateway.exited, 'exit'), 0);
  assert.ok(gateway.logs.some((l) => l.msg === 'gateway stopped'));
});

test('SIGTERM: an SSE stream ends at once, cleanly, and does not hold the exit for SHUTDOWN_GRACE_MS', async (t) => {
  const redisUrl = await testRedisUrl();
  // No worker: the task stays PENDING, so its stream stays open until the gateway ends it.
  const gateway = await startGatewayProc(t, redisUrl, { SHUTDOWN_GRACE_MS: '600000' });
  const taskId = await startTask(gateway.url);
  const first = oneShot();
  const watching = watchSse(sseUrl(gateway.url, taskId), { onEvent: first.fire, timeoutMs: 60_000 });
  await withTimeout(first.fired, 'the PENDING event');

  gateway.kill('SIGTERM');
  const watched = await watching;
  assert.deepEqual([watched.status, watched.events.map((e) => e.status)], [200, ['PENDING']]);
  // Bounded far below the 600 s grace: only an ended stream lets the process exit this soon.
  assert.equal(await withTimeout(gateway.exited, 'exit', 15_000), 0);
});

test('SIGTERM: an SSE client that does not read is cut soon after the end it cannot take, not at SHUTDOWN_GRACE_MS', async (t) => {
  const redisUrl = await testRedisUrl();
  const redis = await redisFor(t, redisUrl);
  const gateway = await startGatewayProc(t, redisUrl, {
    SHUTDOWN_GRACE_MS: '600000', WS_REPLAY_STALL_MS: '600000', WS_MAX_BUFFERED_BYTES: '65536',
  });
  const taskId = await startTask(gateway.url);
  // 19 MB of history: far more than loopback buffers hold for a client that reads nothing.
  await appendHistory(redis, taskId, 300, { note: 'x'.repeat(64 * 1024), complete: false });
  const stuck = stuckReader(t, gateway.port, taskId);
  await withTimeout(stuck.started, 'the first bytes');

  gateway.kill('SIGTERM');
  // Bounded far below the 600 s grace: only a cut connection lets the process exit this soon.
  assert.equal(await withTimeout(gateway.exited, 'exit', 15_000), 0);
  const { lastChunk } = await stuck.resume();
  assert.equal(lastChunk, false);
});

test('a gateway whose stdout is no longer read still exits on SIGTERM, dropping the log lines stdout did not take', async (t) => {
  const redisUrl = await testRedisUrl();
  const gateway = await startGatewayProc(t, redisUrl);
  gateway.child.stdout!.pause();
  // Each request logs a line: far more than the pipe (64 KiB) holds, so stdout stops taking them.
  for (let i = 0; i < 1000; i++) assert.equal((await request(`${gateway.url}/tasks?limit=1`)).status, 200);
  gateway.kill('SIGTERM');
  // pino's exit-time flush would retry the stuck write forever; the settle bound (1 s) cuts it.
  assert.equal(await withTimeout(gateway.exited, 'exit', 15_000), 0);
});

test('a request still in flight after SHUTDOWN_GRACE_MS is cut, and the process exits 0', async (t) => {
  const redisUrl = await testRedisUrl();
  const gateway = await startGatewayProc(t, redisUrl, { SHUTDOWN_GRACE_MS: '300' });
  const inFlight = await halfSentStart(gateway);
  gateway.kill('SIGTERM');
  await withTimeout(inFlight.closed, 'the in-flight connection to be cut');
  await assert.rejects(inFlight.response);
  // Exit code 1 would mean the hard backstop of runMain (grace + STOP_MARGIN_MS) fired instead.
  assert.equal(await withTimeout(gateway.exited, 'exit'), 0);
});

test('a second signal exits at once, without waiting for the in-flight request', async (t) => {
  const redisUrl = await testRedisUrl();
  const gateway = await startGatewayProc(t, redisUrl, { SHUTDOWN_GRACE_MS: '600000' });
  const inFlight = await halfSentStart(gateway);
  gateway.kill('SIGTERM');
  await gateway.waitForLog((l) => l.msg === 'shutting down', 'shutting down');
  assert.equal(gateway.child.exitCode, null, 'the first signal waits for the request');
  gateway.kill('SIGINT');
  // Bounded far below the 600 s grace: only the second signal can end it this soon.
  assert.equal(await withTimeout(gateway.exited, 'exit after the second signal', 15_000), 1);
  assert.ok(gateway.logs.some((l) => l.msg === 'second signal; exiting now'));
  await withTimeout(inFlight.closed, 'the connection to drop');
});

test('readiness turns 503 first: the gateway still serves, sockets open, until SHUTDOWN_READY_DELAY_MS ends', async (t) => {
  const redisUrl = await testRedisUrl();
  const gateway = await startGatewayProc(t, redisUrl, { SHUTDOWN_READY_DELAY_MS: '3000' });
  assert.equal((await request(`${gateway.url}/readyz`)).status, 200);
  const taskId = await startTask(gateway.url);
  let closedAt: number | undefined;
  const first = oneShot();
  const watching = watchTask(wsUrl(gateway.url, taskId), { onEvent: first.fire }).then((r) => {
    closedAt = Date.now();
    return r;
  });
  await withTimeout(first.fired, 'the PENDING event');

  gateway.kill('SIGTERM');
  const notReady = await waitFor(async () => {
    const res = await request(`${gateway.url}/readyz`);
    return res.status === 503 ? res : undefined;
  }, '/readyz to answer 503');
  assert.equal(closedAt, undefined, 'the socket is still open while /readyz answers 503');
  assert.equal(notReady.body.checks.draining, true);
  assert.equal((await request(`${gateway.url}/livez`)).status, 200, 'still alive, and still accepting');

  const watched = await watching;
  assert.equal(watched.code, 1001);
  await waitFor(() => refused(`${gateway.url}/readyz`), 'new connections to be refused');
  assert.equal(await withTimeout(gateway.exited, 'exit'), 0);
});
