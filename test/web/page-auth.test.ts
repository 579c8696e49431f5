import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.js';
import { taskKey } from '../../src/store/keys.js';
import { closeRedis, type Redis } from '../../src/store/redis.js';
import { API_TOKEN, AUTH_ENV } from '../helpers/auth.js';
import { launchBrowser } from '../helpers/browser.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { connectRedis, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';
import { eventIds } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

const WAIT = { timeout: 60_000 };
const STORAGE_KEY = 'taskcast.apiToken';
const REFERENCE_LINES = ['PENDING 0', 'STARTED 25', 'PROCESSING 50', 'CONCLUDING 75', 'COMPLETED 100'].map((s) => {
  const [status, progress] = s.split(' ');
  return `Status: ${status}, Progress: ${progress}%`;
});

describe('the page with auth on (API_TOKENS), in chromium', () => {
  let url: string;
  let redis: Redis;
  let context: BrowserContext;
  let page: Page;
  /** Every URL the browser asked for, sockets included: none may hold the API token. */
  const urls: string[] = [];
  const pageErrors: string[] = [];
  /** Every frame the pages sent on their sockets, from their first load. */
  const framesSent: string[] = [];
  const scope = suiteScope();

  /** A page that records its URLs and uncaught errors. */
  async function newPage(): Promise<Page> {
    const p = await context.newPage();
    p.on('request', (r) => urls.push(r.url()));
    p.on('websocket', (ws) => {
      urls.push(ws.url());
      ws.on('framesent', (frame) => framesSent.push(String(frame.payload)));
    });
    p.on('pageerror', (err) => pageErrors.push(err.message));
    return p;
  }

  before(async () => {
    const redisUrl = await testRedisUrl();
    await buildWeb();
    url = (await startGatewayInProcess(scope, redisUrl, AUTH_ENV)).url;
    await startWorkerInProcess(scope, redisUrl);
    redis = await connectRedis(redisUrl);
    scope.after(() => closeRedis(redis));
    context = await launchBrowser(scope);
    page = await newPage();
  });

  after(() => {
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    assert.ok(urls.length > 10, `URLs recorded: ${urls.length}`);
    assert.deepEqual(urls.filter((u) => u.includes(API_TOKEN)), [], 'the API token is never in a URL');
  });

  const card = (taskId: string, on = page) => on.locator(`.card[data-task-id="${taskId}"]`);
  const stored = (on = page) => on.evaluate((key) => sessionStorage.getItem(key), STORAGE_KEY);
  const lines = async (taskId: string, on = page) =>
    (await card(taskId, on).locator('.log li.event').allTextContents()).map((t) => t.replace(/^\d\d:\d\d:\d\d\.\d{3} /, ''));

  /** Starts a task through the API with the API token; returns its id and watch token. */
  async function startByApi(stageMs: number): Promise<{ taskId: string; watchToken: string }> {
    const res = await request(`${url}/tasks`, { body: { params: { stage_ms: stageMs } }, headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(res.status, 202);
    return { taskId: res.body.task_id, watchToken: res.body.watch_token };
  }

  async function startFromPage(seconds: string): Promise<string> {
    const before = await page.locator('.card').count();
    await page.fill('#stage-s', seconds);
    await page.click('#start-button');
    await page.locator('.card').nth(before).waitFor(WAIT);
    return (await page.locator('.card').first().getAttribute('data-task-id'))!;
  }

  test('1. a first visit asks for an API token; an empty or wrong one is refused in place and not kept', async () => {
    await page.goto(url);
    await page.locator('#sign-in').waitFor(WAIT);
    assert.equal(await page.locator('#app').isHidden(), true);
    assert.equal(await page.locator('#sign-out').isHidden(), true);
    assert.equal(await page.getAttribute('#api-token', 'type'), 'password');

    await page.click('#sign-in-button');
    await page.locator('#sign-in-error', { hasText: 'Enter an API token.' }).waitFor(WAIT);
    await page.fill('#api-token', 'wrong-token');
    await page.click('#sign-in-button');
    await page.locator('#sign-in-error', { hasText: 'The gateway refused this token: invalid API token.' }).waitFor(WAIT);
    assert.equal(await page.getAttribute('#api-token', 'aria-invalid'), 'true');
    assert.equal(await stored(), null, 'a refused token is not kept');
    assert.equal(await page.locator('#app').isHidden(), true);
    // Test 2 checks that the list's feed, asked for now without a token (and refused), is asked for again once signed in.
    await waitFor(() => framesSent.some((f) => (JSON.parse(f) as { feed?: string }).feed !== undefined), 'the list feed\'s first subscribe message', WAIT.timeout);
  });

  test('2. signed in: start, watch to COMPLETED, each event once; one socket for the cards and the list\'s feed, the API token rides in their subscribe messages, no URL has it; the token is in sessionStorage only', async () => {
    await page.fill('#api-token', API_TOKEN);
    await page.click('#sign-in-button');
    await page.locator('#app').waitFor(WAIT);
    assert.equal(await page.locator('#sign-in').isHidden(), true);
    assert.equal(await page.locator('#sign-out').isVisible(), true);
    assert.equal(await page.inputValue('#api-token'), '', 'the box is emptied');
    assert.equal(await stored(), API_TOKEN);

    const taskId = await startFromPage('0.2');
    await card(taskId).locator('.badge', { hasText: 'COMPLETED' }).waitFor(WAIT);
    assert.deepEqual(await lines(taskId), REFERENCE_LINES);
    const logged = await card(taskId).locator('.log li.event').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-event-id')));
    assert.deepEqual(logged, await eventIds(redis, taskId));
    await page.locator(`#task-list .task-link[data-task-id="${taskId}"] .badge`, { hasText: 'COMPLETED' }).waitFor(WAIT);
    // The page's one socket since its first load (test 1): the list's feed was refused then (no
    // token yet), and followed on the same socket once signed in.
    const sockets = urls.filter((u) => u.startsWith('ws'));
    assert.deepEqual(sockets.map((s) => new URL(s).pathname), ['/ws'], 'one socket for the cards and the list');
    assert.equal(new URL(sockets[0]!).searchParams.get('token'), null, 'no token in the socket URL');
    assert.ok(sockets.every((s) => !s.includes(API_TOKEN)), 'the API token is in no URL');
    const subscribes = framesSent.map((f) => JSON.parse(f) as { type: string; task?: string; feed?: string; token?: string }).filter((m) => m.type === 'subscribe');
    assert.equal(subscribes.find((m) => m.task === taskId)?.token, API_TOKEN, 'the card\'s subscribe message carries the API token');
    assert.deepEqual(subscribes.filter((m) => m.feed !== undefined).map((m) => [m.feed, m.token]), [['all', undefined], ['all', API_TOKEN]],
      'signed in, the list\'s feed subscribe message carries the API token');
    assert.equal(new URL(page.url()).hash, `#task=${taskId}`);
    await page.locator(`#task-list .task-link[data-task-id="${taskId}"]`).waitFor(WAIT);
  });

  test('3. cancel from the card ends the task CANCELLED', async () => {
    const taskId = await startFromPage('600');
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'lease')) !== '', 'a worker runs the task', 30_000);
    await card(taskId).locator('.conn[data-state="live"]').waitFor(WAIT);
    await card(taskId).locator('button.cancel').click();
    await card(taskId).locator('.badge', { hasText: 'CANCELLED' }).waitFor(WAIT);
    assert.deepEqual(await lines(taskId), ['Status: PENDING, Progress: 0%', 'Status: CANCELLED, Progress: 0%']);
  });

  test('4. a reload keeps the session; sign-out forgets the token, the cards and the list', async () => {
    await page.reload();
    await page.locator('#task-list .task-link').first().waitFor(WAIT);
    assert.equal(await page.locator('#sign-in').isHidden(), true);
    assert.equal(await page.locator('#sign-out').isVisible(), true);
    assert.equal(await page.locator('.card').count(), 1, 'the #task= link reopened its card');

    await page.click('#sign-out');
    await page.locator('#sign-in').waitFor(WAIT);
    assert.equal(await stored(), null);
    assert.equal(await page.locator('.card').count(), 0);
    assert.equal(await page.locator('#task-list .task-link').count(), 0);
    assert.equal(new URL(page.url()).hash, '');
    await page.reload();
    await page.locator('#sign-in').waitFor(WAIT);
  });

  test('5. a watch-token link opens read-only: that task live to its end; no start form, no list, no cancel', async () => {
    const { taskId, watchToken } = await startByApi(300);
    const shared = await newPage();
    const sockets: string[] = [];
    const sent: string[] = [];
    const apiCalls: string[] = [];
    shared.on('websocket', (ws) => {
      sockets.push(ws.url());
      ws.on('framesent', (frame) => sent.push(String(frame.payload)));
    });
    shared.on('request', (r) => new URL(r.url()).pathname.startsWith('/tasks') && apiCalls.push(new URL(r.url()).pathname));
    await shared.goto(`${url}/#task=${taskId}&token=${watchToken}`);
    await card(taskId, shared).waitFor(WAIT);
    assert.equal(await card(taskId, shared).locator('button.cancel').isHidden(), true, 'no cancel, even while it runs');
    await card(taskId, shared).locator('.badge', { hasText: 'COMPLETED' }).waitFor(WAIT);
    assert.deepEqual(await lines(taskId, shared), REFERENCE_LINES);
    assert.equal(await shared.locator('#read-only').isVisible(), true);
    for (const hidden of ['#task-forms', '#recent-tasks', '#sign-in', '#sign-out']) {
      assert.equal(await shared.locator(hidden).isHidden(), true, hidden);
    }
    assert.deepEqual(sockets.map((s) => new URL(s).pathname), ['/ws'], 'the card\'s socket only');
    assert.deepEqual(sent.filter((f) => 'feed' in JSON.parse(f)), [], 'no feed: the link token cannot follow one');
    const subscribe = sent.map((f) => JSON.parse(f) as { type: string; task?: string; token?: string }).find((m) => m.type === 'subscribe' && m.task === taskId);
    assert.equal(subscribe?.token, watchToken, 'the subscribe message carries the link\'s watch token');
    assert.deepEqual(apiCalls.filter((p) => p === '/tasks'), [], 'no list call: the link token cannot list');
    assert.equal(new URL(shared.url()).hash, `#task=${taskId}&token=${watchToken}`, 'the link stays as it was');
    await shared.close();
  });

  test('6. a link with another task\'s watch token: the card says so and stops, no endless retries', async () => {
    const { taskId } = await startByApi(0);
    const { watchToken: otherToken } = await startByApi(0);
    const shared = await newPage();
    const sockets: string[] = [];
    shared.on('websocket', (ws) => sockets.push(ws.url()));
    await shared.goto(`${url}/#task=${taskId}&token=${otherToken}`);
    const error = card(taskId, shared).locator('.error');
    await error.waitFor(WAIT);
    assert.equal(await error.textContent(), `Not allowed to watch ${taskId}: invalid or expired token for this task.`);
    assert.equal(await card(taskId, shared).locator('.conn').getAttribute('data-state'), 'failed');
    assert.equal(sockets.length, 1);
    await shared.close();
  });

  test('7. a tag-token link shows that tag\'s tasks live, read-only, from the tag feed alone: no list call, no other tag\'s task', async () => {
    const start = async (tags: string[]) => {
      const res = await request(`${url}/tasks`, { body: { params: { stage_ms: 300 }, tags }, headers: { authorization: `Bearer ${API_TOKEN}` } });
      assert.equal(res.status, 202);
      return res.body.task_id as string;
    };
    const [a, b] = [await start(['team:x']), await start(['team:x', 'other'])];
    const outside = await start(['other']);
    const grant = await request(`${url}/feed-tokens`, { body: { tag: 'team:x' }, headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(grant.status, 200);
    const shared = await newPage();
    const apiCalls: string[] = [];
    shared.on('request', (r) => new URL(r.url()).pathname.startsWith('/tasks') && apiCalls.push(new URL(r.url()).pathname));
    await shared.goto(`${url}/#tag=team:x&token=${grant.body.token}`);
    for (const id of [a, b]) await shared.locator(`#task-list .task-link[data-task-id="${id}"] .badge`, { hasText: 'COMPLETED' }).waitFor(WAIT);
    assert.equal(await shared.locator(`#task-list .task-link[data-task-id="${outside}"]`).count(), 0, 'no task of another tag');
    assert.equal(await shared.locator('#task-list .task-link').count(), 2);
    assert.equal(await shared.locator('#task-forms').isHidden(), true);
    assert.equal(await shared.locator('#list-filters').isHidden(), true);
    assert.match((await shared.locator('#read-only').textContent())!, /tasks tagged team:x/);
    assert.deepEqual(apiCalls, [], 'the tag token lists nothing: the list is the feed alone');
    const later = await start(['team:x']);
    await shared.locator(`#task-list .task-link[data-task-id="${later}"]`).waitFor(WAIT);
    assert.equal(await shared.locator('#task-list .task-link').first().getAttribute('data-task-id'), later, 'a new task comes at the top');
    await shared.close();
  });
});
