import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.js';
import { taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { launchBrowser } from '../helpers/browser.js';
import { startRestartableGateway, type RestartableGateway } from '../helpers/gateway-restart.js';
import { request, startTask } from '../helpers/http.js';
import { startWorkerInProcess } from '../helpers/in-process.js';
import { connectRedis, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';
import { waitFor } from '../helpers/wait.js';
import { closeRedis } from '../../src/store/redis.js';
import { eventIds, taskEvents } from '../helpers/task-log.js';

const OUTPUT_DIR = new URL('../../test-output/', import.meta.url);
const STAGES = ['PENDING 0', 'STARTED 25', 'PROCESSING 50', 'CONCLUDING 75', 'COMPLETED 100'];
const WAIT = { timeout: 60_000 };

/** The log lines of a reference task: no task id on them (the card's heading has it). */
const expectedLines = () =>
  STAGES.map((s) => {
    const [status, progress] = s.split(' ');
    return `Status: ${status}, Progress: ${progress}%`;
  });

describe('the page, in chromium, against a real gateway, worker and Redis', () => {
  let gateway: RestartableGateway;
  let redis: Redis;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  /** Every WebSocket message the page sent, over all its sockets. */
  const sentFrames: string[] = [];
  const scope = suiteScope();

  before(async () => {
    const redisUrl = await testRedisUrl();
    await buildWeb();
    gateway = await startRestartableGateway(scope, redisUrl);
    await startWorkerInProcess(scope, redisUrl);
    redis = await connectRedis(redisUrl);
    scope.after(() => closeRedis(redis));
    context = await launchBrowser(scope);
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('websocket', (ws) => ws.on('framesent', (frame) => sentFrames.push(String(frame.payload))));
    page.on('console', (m) => {
      if (/Content Security Policy/.test(m.text())) pageErrors.push(m.text());
    });
    await page.goto(gateway.url);
  });

  after(() => assert.deepEqual(pageErrors, [], 'no uncaught errors in the page'));

  const card = (taskId: string) => page.locator(`.card[data-task-id="${taskId}"]`);

  /** The log's event lines without their timestamps. */
  async function eventLines(taskId: string, on: Page = page): Promise<string[]> {
    const texts = await on.locator(`.card[data-task-id="${taskId}"] .log li.event`).allTextContents();
    return texts.map((t) => t.replace(/^\d\d:\d\d:\d\d\.\d{3} /, ''));
  }

  async function waitForStatus(taskId: string, status: string, on: Page = page): Promise<void> {
    await on.locator(`.card[data-task-id="${taskId}"] .badge`, { hasText: status }).waitFor(WAIT);
  }


  /** Clicks Start New Task with `seconds` per stage; returns the new card's task id. */
  async function startFromPage(seconds: string): Promise<string> {
    const before = await page.locator('.card').count();
    await page.fill('#stage-s', seconds);
    await page.click('#start-button');
    await page.locator('.card').nth(before).waitFor(WAIT);
    return (await page.locator('.card').first().getAttribute('data-task-id'))!;
  }

  /** Starts a typewriter task from the form (then sets the form back to the reference task); returns its id. */
  async function startTypewriter(words: string, wordsPerS: string): Promise<string> {
    const before = await page.locator('.card').count();
    await page.selectOption('#task-type', 'typewriter');
    await page.fill('#words', words);
    await page.fill('#words-per-s', wordsPerS);
    await page.click('#start-button');
    await page.locator('.card').nth(before).waitFor(WAIT);
    await page.selectOption('#task-type', 'reference');
    return (await page.locator('.card').first().getAttribute('data-task-id'))!;
  }

  /** The card's output lines as shown. */
  const outputLines = (taskId: string) => card(taskId).locator('.output .line').allTextContents();

  /** GET /tasks/<id>/output as lines (its final newline ends the last line). */
  async function serverOutputLines(taskId: string): Promise<string[]> {
    const text = (await request(`${gateway.url}/tasks/${taskId}/output`)).body as string;
    return text === '' ? [] : text.replace(/\n$/, '').split('\n');
  }

  /** The card of a finished typewriter task shows exactly the server's output, its result, no message. */
  async function assertTypewriterDone(taskId: string, words: number): Promise<void> {
    await waitForStatus(taskId, 'COMPLETED');
    const c = card(taskId);
    const expected = await serverOutputLines(taskId);
    assert.equal(expected.length, Math.ceil(words / 12), 'twelve words a line');
    assert.deepEqual(await outputLines(taskId), expected);
    assert.equal(await c.locator('.output .line.tentative').count(), 0, 'COMPLETED commits the output');
    assert.equal(await c.locator('.output-count').textContent(), `${expected.length} lines`);
    assert.equal(await c.locator('.message').textContent(), '', 'a stage event clears the message');
    const { result } = (await request(`${gateway.url}/tasks/${taskId}`)).body;
    assert.equal(result.words, words);
    assert.equal(await c.locator('.result').textContent(), `Result:\n${JSON.stringify(result, null, 2)}`);
    const download = c.locator('a.download');
    assert.equal(await download.getAttribute('href'), `/tasks/${taskId}/output`);
    assert.equal(await download.getAttribute('download'), `task-${taskId}-output.txt`);
    const logged = await c.locator('.log li.event').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-event-id')));
    const notOutput = (await taskEvents(redis, taskId)).filter((e) => e.type !== 'output').map((e) => e.id);
    assert.deepEqual(logged, notOutput, 'one log line per stage and progress event, each once');
  }

  async function assertFullHistory(taskId: string, on: Page = page): Promise<void> {
    await waitForStatus(taskId, 'COMPLETED', on);
    const c = on.locator(`.card[data-task-id="${taskId}"]`);
    assert.deepEqual(await eventLines(taskId, on), expectedLines());
    assert.deepEqual(await c.locator('.log li.event').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-event-id'))), await eventIds(redis, taskId));
    assert.equal(await c.locator('progress').getAttribute('value'), '100');
    assert.equal(await c.locator('.log li.event time').count(), 5, 'every line has a timestamp');
    assert.ok(!(await c.locator('.log').textContent())!.includes(taskId), 'no log line repeats the task id');
  }

  test('1. start a task: every stage exactly once, in order; the bar reaches 100% and COMPLETED', async () => {
    const taskId = await startFromPage('0.2');
    assert.equal((await redis.hget(taskKey(taskId), 'params'))!, '{"stage_ms":200}');
    await assertFullHistory(taskId);
    assert.equal(await card(taskId).locator('.conn').textContent(), 'Finished');
    assert.equal(await card(taskId).locator('.cancel').isHidden(), true);
    assert.equal(await card(taskId).locator('.task-id').textContent(), taskId);
  });

  test('2. two tasks at once: each card shows only its own events', async () => {
    const a = await startFromPage('0.3');
    const b = await startFromPage('0.3');
    assert.notEqual(a, b);
    await waitForStatus(a, 'COMPLETED');
    await waitForStatus(b, 'COMPLETED');
    assert.deepEqual(await eventLines(a), expectedLines());
    assert.deepEqual(await eventLines(b), expectedLines());
  });

  test('50 cards share one WebSocket; each shows exactly its task\'s events', async () => {
    const tasks: string[] = [];
    for (let i = 0; i < 50; i++) tasks.push(await startTask(gateway.url, { stage_ms: 300 }));
    const fresh = await context.newPage();
    fresh.on('pageerror', (err) => pageErrors.push(err.message));
    const sockets: string[] = [];
    fresh.on('websocket', (ws) => sockets.push(ws.url()));
    await fresh.goto(gateway.url);
    for (const id of tasks) await fresh.evaluate((taskId) => (location.hash = `task=${taskId}`), id);
    await waitFor(async () => (await fresh.locator('.card').count()) === 50, '50 cards');
    for (const id of tasks) await assertFullHistory(id, fresh);
    // The cards and the task list's feed share /ws.
    assert.deepEqual(sockets.map((s) => new URL(s).pathname), ['/ws'], 'one socket for the whole page');
    await fresh.close();
  });

  test('3. gateway killed mid-task and restarted on the same port: reconnecting shown, then the rest, each once', async () => {
    const taskId = await startFromPage('1');
    await waitFor(async () => (await eventLines(taskId)).length >= 2, 'STARTED on the card', 30_000);
    await gateway.kill('SIGKILL');
    const conn = card(taskId).locator('.conn');
    await page
      .locator(`.card[data-task-id="${taskId}"] .conn`, { hasText: new RegExp(`^Disconnected from ${taskId}\\. Reconnecting… next attempt in \\d+ s$`) })
      .waitFor(WAIT);
    assert.equal(await conn.getAttribute('role'), 'status');

    // A start while the server is down fails in place.
    await page.fill('#stage-s', '0');
    await page.click('#start-button');
    await page.locator('#start-error', { hasText: /^Could not start a task: cannot reach the server/ }).waitFor(WAIT);

    await gateway.restart();
    await waitForStatus(taskId, 'COMPLETED');
    await assertFullHistory(taskId);
    // The gateway answered again (the card is back live): the failed start's error is stale, and gone.
    await page.locator('#start-error').waitFor({ state: 'hidden', ...WAIT });
    const notes = await card(taskId).locator('.log li.note').allTextContents();
    assert.ok(notes.some((n) => n.endsWith('Disconnected. Reconnecting…')), notes.join('\n'));
    mkdirSync(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: new URL('page-after-reconnect.png', OUTPUT_DIR).pathname, fullPage: true });
  });

  test('4. observe an existing task by id, and open /#task=<id>', async () => {
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'COMPLETED', 'task done');
    await page.fill('#task-id', taskId);
    await page.press('#task-id', 'Enter');
    await assertFullHistory(taskId);
    assert.equal(new URL(page.url()).hash, `#task=${taskId}`);

    const shared = await context.newPage();
    shared.on('pageerror', (err) => pageErrors.push(err.message));
    await shared.goto(`${gateway.url}/#task=${taskId}`);
    await assertFullHistory(taskId, shared);
    assert.equal(await shared.locator('.card').count(), 1);

    // A running task opened by link shows its live progress too.
    const running = await startTask(gateway.url, { stage_ms: 200 });
    await shared.evaluate((id) => (location.hash = `task=${id}`), running);
    await assertFullHistory(running, shared);
    await shared.close();
  });

  test('5. after a reload the list shows earlier tasks; choosing one shows its full history', async () => {
    const listed = (await request(`${gateway.url}/tasks?limit=10`)).body.tasks.map((t: { task_id: string }) => t.task_id);
    await page.goto(gateway.url);
    await page.reload();
    await page.locator('#task-list .task-link').first().waitFor(WAIT);
    const shown = await page.locator('#task-list .task-link').evaluateAll((bs) => bs.map((b) => b.getAttribute('data-task-id')));
    assert.deepEqual(shown, listed, 'newest first, as GET /tasks');
    assert.ok(shown.length >= 6, `earlier tasks listed: ${shown.length}`);
    assert.equal(await page.locator('.card').count(), 0);

    const oldest = shown.at(-1)!;
    await page.locator(`#task-list .task-link[data-task-id="${oldest}"]`).focus();
    await page.keyboard.press('Enter');
    await assertFullHistory(oldest);

    // More than a page of tasks: "Load more" follows the cursor.
    const more = page.locator('#more-tasks');
    if (await more.isVisible()) {
      await more.click();
      await waitFor(async () => (await page.locator('#task-list .task-link').count()) > shown.length, 'next page');
    }
  });

  test('cancel: the button cancels a running task; the card ends CANCELLED', async () => {
    const taskId = await startFromPage('600');
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'lease')) !== '', 'a worker runs the task', 30_000);
    await card(taskId).locator('.conn[data-state="live"]').waitFor(WAIT);
    await card(taskId).locator('button.cancel').click();
    await waitForStatus(taskId, 'CANCELLED');
    const lines = await eventLines(taskId);
    assert.deepEqual(lines, ['Status: PENDING, Progress: 0%', 'Status: CANCELLED, Progress: 0%']);
    assert.equal(new Set(lines).size, lines.length, 'no duplicate line');
    assert.equal(await card(taskId).locator('button.cancel').isHidden(), true);
  });

  test('6. an unknown id: a clear error on the card, and no retry', async () => {
    const unknown = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';
    const subscribes = () => sentFrames.filter((f) => f.includes(unknown));
    await page.fill('#task-id', unknown);
    await page.click('#observe-form button[type=submit]');
    const error = card(unknown).locator('.error');
    await error.waitFor(WAIT);
    assert.equal(await error.textContent(), `Task ${unknown} was not found: it never existed or has expired.`);
    assert.equal(await card(unknown).locator('.conn').getAttribute('data-state'), 'failed');
    assert.equal(await card(unknown).locator('.badge').textContent(), 'ERROR');

    // A retry would come within 1 s; watch a task that takes longer than that, then count again.
    const later = await startFromPage('0.4');
    await waitForStatus(later, 'COMPLETED');
    assert.deepEqual(subscribes(), [JSON.stringify({ type: 'subscribe', task: unknown })], 'a single subscribe for the unknown id');
    assert.equal(await card(unknown).locator('.conn').getAttribute('data-state'), 'failed');

    // Malformed input is refused in place, before any request.
    await page.fill('#task-id', 'not-a-task');
    await page.click('#observe-form button[type=submit]');
    await page.locator('#observe-error', { hasText: 'A task id is a UUID' }).waitFor(WAIT);
    assert.equal(await page.getAttribute('#task-id', 'aria-invalid'), 'true');
    await page.fill('#stage-s', '601');
    await page.click('#start-button');
    await page.locator('#start-error', { hasText: 'Seconds per stage must be a number from 0 to 600.' }).waitFor(WAIT);
  });

  test('7. a typewriter task from the form: its progress message beside the bar, its output as it grows, then its result', async () => {
    const taskId = await startTypewriter('60', '20');
    assert.equal(await redis.hget(taskKey(taskId), 'params'), '{"words":60,"words_per_s":20}');
    const c = card(taskId);
    await page.waitForFunction(
      (id) => {
        const el = document.querySelector(`.card[data-task-id="${id}"]`);
        return /^\d+ of 60 words$/.test(el?.querySelector('.message')?.textContent ?? '') && el!.querySelectorAll('.output .line.tentative').length > 0;
      },
      taskId,
      WAIT,
    );
    const progressLine = /^Status: STARTED, Progress: \d+%, Message: \d+ of 60 words$/;
    assert.ok((await eventLines(taskId)).some((line) => progressLine.test(line)), 'progress events are logged with their message');
    await assertTypewriterDone(taskId, 60);
    assert.equal(await c.locator('.output-more').isHidden(), true);
    mkdirSync(OUTPUT_DIR, { recursive: true });
    await c.screenshot({ path: new URL('typewriter-card.png', OUTPUT_DIR).pathname });
  });

  test('8. gateway killed while a typewriter task writes: the card resumes and its output is exact, no line twice', async (t) => {
    const taskId = await startTypewriter('240', '40');
    await waitFor(async () => (await outputLines(taskId)).length >= 3, 'three lines of output on the card', 30_000);
    await gateway.kill('SIGKILL');
    await card(taskId).locator('.conn[data-state="reconnecting"]').waitFor(WAIT);
    await gateway.restart();
    await assertTypewriterDone(taskId, 240);
    const notes = await card(taskId).locator('.log li.note').allTextContents();
    assert.ok(notes.some((n) => n.endsWith('Reconnected; resuming after the last event shown.')), notes.join('\n'));

    // The log followed its end; a re-layout that wraps its lines more (a narrower window) keeps
    // its last line in view instead of cutting it off.
    const log = card(taskId).locator('.log');
    const lastLineShown = () =>
      log.evaluate((ol) => {
        const last = ol.lastElementChild!.getBoundingClientRect();
        return ol.scrollHeight > ol.clientHeight && last.bottom <= ol.getBoundingClientRect().bottom + 1 && last.bottom > ol.getBoundingClientRect().top;
      });
    assert.equal(await lastLineShown(), true, 'an overflowing log, scrolled to its last line');
    const size = page.viewportSize()!;
    await page.setViewportSize({ width: 420, height: size.height });
    t.after(() => page.setViewportSize(size));
    await page.waitForFunction(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(true)))));
    assert.equal(await lastLineShown(), true, 'still on its last line after the lines wrapped anew');
  });

  test('"Seconds per stage" the browser cannot read (1e) is refused in place: an error, no task started', async () => {
    const tasksBefore = (await request(`${gateway.url}/tasks?limit=100`)).body.tasks.length;
    const cardsBefore = await page.locator('.card').count();
    await page.selectOption('#task-type', 'reference');
    await page.fill('#stage-s', '');
    await page.locator('#stage-s').pressSequentially('1e');
    assert.equal(await page.locator('#stage-s').evaluate((i: HTMLInputElement) => i.validity.badInput), true, 'chromium reads 1e as no number');
    await page.click('#start-button');
    await page.locator('#start-error', { hasText: 'Seconds per stage must be a number from 0 to 600.' }).waitFor(WAIT);
    assert.equal(await page.getAttribute('#stage-s', 'aria-invalid'), 'true');
    assert.equal(await page.locator('.card').count(), cardsBefore, 'no card');
    assert.equal((await request(`${gateway.url}/tasks?limit=100`)).body.tasks.length, tasksBefore, 'no task started');
    await page.fill('#stage-s', '');
  });

  test('a fresh load: the favicon is served, and the console has no error', async () => {
    const fresh = await context.newPage();
    const problems: string[] = [];
    fresh.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    fresh.on('pageerror', (err) => problems.push(err.message));
    fresh.on('requestfailed', (r) => problems.push(`${r.url()} failed`));
    fresh.on('response', (r) => r.status() >= 400 && problems.push(`${r.url()} answered ${r.status()}`));
    await fresh.goto(gateway.url);
    await fresh.locator('#task-list .task-link').first().waitFor(WAIT);
    const icon = await fresh.locator('link[rel="icon"]').getAttribute('href');
    assert.ok(icon, 'the page names its icon');
    const res = await fetch(new URL(icon, gateway.url));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/svg+xml');
    assert.match(await res.text(), /^<svg /);
    assert.deepEqual(problems, []);
    await fresh.close();
  });

  test('the form refuses typewriter params out of range, in place', async () => {
    await page.selectOption('#task-type', 'typewriter');
    await page.fill('#words', '2.5');
    await page.fill('#words-per-s', '');
    await page.click('#start-button');
    await page.locator('#start-error', { hasText: 'Words must be a whole number from 1 to 100000.' }).waitFor(WAIT);
    assert.equal(await page.getAttribute('#words', 'aria-invalid'), 'true');
    assert.equal(await page.locator('#stage-s').isHidden(), true, 'only the chosen type\'s fields are shown');
    await page.selectOption('#task-type', 'reference');
  });
});
