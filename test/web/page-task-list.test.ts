import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildWeb } from '../../scripts/build-web.js';
import { launchBrowser } from '../helpers/browser.js';
import { startRestartableGateway } from '../helpers/gateway-restart.js';
import { startTask } from '../helpers/http.js';
import { startWorkerProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { testScope } from '../helpers/scope.js';

const WAIT = { timeout: 60_000 };

test('the page (chromium): tasks started elsewhere appear at the top of the list and move live over the page\'s one /ws socket, across a gateway restart', async (t) => {
  const scope = testScope(t);
  const redisUrl = await testRedisUrl();
  const redis = await redisFor(t, redisUrl);
  await buildWeb();
  const gateway = await startRestartableGateway(scope, redisUrl);
  await startWorkerProc(scope, redisUrl);
  const context = await launchBrowser(scope);
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(new URL(ws.url()).pathname));
  await page.goto(gateway.url);
  await page.locator('#no-tasks').waitFor({ state: 'visible', ...WAIT });
  const item = (taskId: string) => page.locator(`#task-list .task-link[data-task-id="${taskId}"]`);
  const badge = (taskId: string, status: string) => item(taskId).locator('.badge', { hasText: status }).waitFor(WAIT);

  // Started through the API, not the page: only the feed can bring them to the list.
  const a = await startTask(gateway.url, { stage_ms: 300 });
  const b = await startTask(gateway.url, { stage_ms: 300 });
  await item(a).waitFor(WAIT);
  await item(b).waitFor(WAIT);
  assert.deepEqual(await page.locator('#task-list .task-link').evaluateAll((els) => els.map((e) => e.getAttribute('data-task-id'))), [b, a],
    'newest first');
  await badge(a, 'COMPLETED');
  await badge(b, 'COMPLETED');
  assert.match((await item(b).textContent())!, /COMPLETED 100%/);

  // A task started and run while the gateway is down: the feed resumes from its cursor and brings it.
  await gateway.kill();
  const c = (await new TaskStore(redis).start('reference', { stage_ms: 100 })).state.task_id;
  await gateway.restart();
  await badge(c, 'COMPLETED');
  assert.equal(await page.locator('#task-list .task-link').count(), 3);
  // The list follows the feed on the page's one multiplexed socket (one before the restart, then
  // the reconnects: attempts while the gateway is down count too).
  assert.ok(sockets.length >= 2 && sockets.every((p) => p === '/ws'), sockets.join());
  assert.deepEqual(pageErrors, []);
});
