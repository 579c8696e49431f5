import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.js';
import type { Redis } from '../../src/store/redis.js';
import { closeRedis } from '../../src/store/redis.js';
import { TaskWrites, type EventInput } from '../../src/store/task-writes.js';
import { MAX_SHOWN_LINES } from '../../src/web/output-view.js';
import { launchBrowser } from '../helpers/browser.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayProc, type ServiceProc } from '../helpers/processes.js';
import { connectRedis, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';

const WAIT = { timeout: 90_000 };
const LINES = 100_000;
/** Events per append item; the writer's group commit takes up to 512 events per script call. */
const ITEM_EVENTS = 500;

/** Output line `n` (from 1): text, and every thousandth a record, shown as its JSON. */
const chunk = (n: number): EventInput =>
  n % 1000 === 0 ? { kind: 'json', ts: Date.now(), value: JSON.stringify({ line: n }) } : { kind: 'text', ts: Date.now(), value: `line ${n}\n` };
const lineText = (n: number): string => (n % 1000 === 0 ? JSON.stringify({ line: n }) : `line ${n}`);

/**
 * The page against a long output: a gateway and Redis, no worker. The test writes the task's log
 * through the production append script (TaskWrites), as a worker holding the lease would, so it
 * chooses when each event arrives: a discarded attempt, scrolling while lines arrive, then
 * 100 000 output events for a page to take. The duration is reported, not asserted.
 */
describe('the page with a 100 000-line output, in chromium', () => {
  let gateway: ServiceProc;
  let redis: Redis;
  let writes: TaskWrites;
  let context: BrowserContext;
  let page: Page;
  let taskId: string;
  let seq = 0;
  const pageErrors: string[] = [];
  const scope = suiteScope();

  before(async () => {
    const redisUrl = await testRedisUrl();
    await buildWeb();
    gateway = await startGatewayProc(scope, redisUrl);
    redis = await connectRedis(redisUrl);
    scope.after(() => closeRedis(redis));
    writes = new TaskWrites(redis, { consumer: 'test', ttlS: 3600, maxDeliveries: 5 });
    context = await launchBrowser(scope);
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    taskId = await startTask(gateway.url);
  });

  after(() => assert.deepEqual(pageErrors, [], 'no uncaught errors in the page'));

  const card = () => page.locator(`.card[data-task-id="${taskId}"]`);
  const stage = (status: string, progress: number | '', extra: { step?: number; terminal?: boolean; fields?: (string | number)[] } = {}): EventInput =>
    ({ kind: 'stage', status, progress, ts: Date.now(), ...extra });

  /** Records `events` in order, in items of ITEM_EVENTS events sent at once. */
  async function append(events: EventInput[]): Promise<void> {
    const items = [];
    for (let i = 0; i < events.length; i += ITEM_EVENTS) {
      items.push(writes.append({ taskId, lease: 'test-lease', commandId: '', firstSeq: seq + 1, events: events.slice(i, i + ITEM_EVENTS) }));
      seq += Math.min(ITEM_EVENTS, events.length - i);
    }
    const replies = await Promise.all(items);
    for (const reply of replies) {
      assert.equal(reply[0], 'OK');
      assert.ok(reply.slice(1).every((id) => /^\d+-\d+$/.test(id)), `every event recorded: ${reply.slice(1).find((id) => !/^\d+-\d+$/.test(id))}`);
    }
  }

  let written = 0;
  /** Records the output lines after those written so far, up to line `to`. */
  async function appendLines(to: number): Promise<void> {
    const from = written + 1;
    written = to;
    await append(Array.from({ length: to - from + 1 }, (_, i) => chunk(from + i)));
  }
  const waitForCount = (text: string) => card().locator('.output-count', { hasText: new RegExp(`^${text}$`) }).waitFor(WAIT);

  /** The output line 2 px below the top of the box, and where it starts relative to that top. */
  const topLine = (box: Locator) =>
    box.evaluate((b) => {
      const top = b.getBoundingClientRect().top + b.clientTop;
      const line = [...b.querySelectorAll<HTMLElement>('.line')].find((l) => l.getBoundingClientRect().bottom > top + 2)!;
      return { text: line.textContent, offset: line.getBoundingClientRect().top - top };
    });
  /** Scrolls the box to `to` (a fraction of its height), then lets a frame pass so the page sees the scroll. */
  const scrollTo = (box: Locator, to: number) =>
    box.evaluate(async (b, fraction) => {
      b.scrollTop = b.scrollHeight * fraction;
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }, to);

  test('a discarded attempt\'s lines leave the card; the box follows the end, and stays put while scrolled up', async () => {
    await append([stage('STARTED', 5, { step: 1 })]);
    await page.goto(`${gateway.url}/#task=${taskId}`);
    await card().locator('.conn[data-state="live"]').waitFor(WAIT);

    await append(Array.from({ length: 20 }, (_, i): EventInput => ({ kind: 'text', ts: Date.now(), value: `void ${i + 1}\n` })));
    await waitForCount('20 lines');
    assert.equal(await card().locator('.output .line.tentative').count(), 20, 'output before the next stage is tentative');
    await append([stage('RETRYING', 5, { fields: ['attempt', 2] }), stage('PROCESSING', 10, { step: 2 })]);
    await waitForCount('0 lines');
    assert.equal(await card().locator('.output .line').count(), 0, 'RETRYING removes the tentative lines');

    await appendLines(3000);
    await waitForCount('3,000 lines');
    const box = card().locator('.output');
    await scrollTo(box, 0.5);
    const seen = await topLine(box);
    await appendLines(3300);
    await waitForCount('3,300 lines');
    const now = await topLine(box);
    assert.equal(now.text, seen.text, 'scrolled up: the line in view stays in view while lines arrive');
    assert.ok(Math.abs(now.offset - seen.offset) <= 2, `and in its place (moved ${now.offset - seen.offset} px)`);
    assert.equal(await card().locator('.output .line').count(), MAX_SHOWN_LINES);

    await scrollTo(box, 1);
    await appendLines(3500);
    await waitForCount('3,500 lines');
    const gap = await box.evaluate((b) => b.scrollHeight - b.scrollTop - b.clientHeight);
    assert.ok(gap <= 4, `at the end: the box follows it (${gap} px from the end)`);
    assert.equal(await card().locator('.output .line').last().textContent(), 'line 3500');
  });

  test('100 000 output events: a page opened on them shows the last 1 000 lines, the right count and the result', async (t) => {
    await page.goto('about:blank');
    await appendLines(LINES);
    await append([stage('COMPLETED', 100, { step: 3, terminal: true, fields: ['result', JSON.stringify({ lines: LINES })] })]);
    const started = Date.now();
    await page.goto(`${gateway.url}/#task=${taskId}`);
    await card().locator('.badge', { hasText: 'COMPLETED' }).waitFor(WAIT);
    await waitForCount('100,000 lines');
    t.diagnostic(`${LINES} output events shown ${Date.now() - started} ms after the page was opened`);
    await assertLastLines();
  });

  /** The card shows the last MAX_SHOWN_LINES lines of GET /tasks/<id>/output, committed, and the result. */
  async function assertLastLines(): Promise<void> {
    const c = card();
    const text = (await request(`${gateway.url}/tasks/${taskId}/output`)).body as string;
    const all = text.replace(/\n$/, '').split('\n');
    assert.equal(all.length, LINES);
    assert.deepEqual(all.slice(0, 2), [lineText(1), lineText(2)], 'the discarded attempt is not in the output');
    const expected = all.slice(-MAX_SHOWN_LINES);
    assert.equal(expected.at(-1), lineText(LINES));
    assert.deepEqual(await c.locator('.output .line').allTextContents(), expected);
    assert.equal(await c.locator('.output .line.tentative').count(), 0);
    assert.equal(await c.locator('.output-more').textContent(), `${(LINES - MAX_SHOWN_LINES).toLocaleString('en')} earlier lines not shown. Open the whole output`);
    assert.equal(await c.locator('.output-more a').getAttribute('href'), `/tasks/${taskId}/output`);
    assert.equal(await c.locator('.result').textContent(), `Result:\n${JSON.stringify({ lines: LINES }, null, 2)}`);
    const stages = ['PENDING', 'STARTED', 'RETRYING', 'PROCESSING', 'COMPLETED'].map((status) => `Status: ${status},`);
    const logged = await c.locator('.log li').allTextContents();
    assert.deepEqual(logged.map((line) => line.match(/Status: \w+,/)?.[0]), stages, 'the log has the stage events, not the output events');
  }
});
