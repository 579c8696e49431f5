import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildWeb } from '../../scripts/build-web.js';
import { launchBrowser } from '../helpers/browser.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { testRedisUrl } from '../helpers/redis.js';
import { testScope } from '../helpers/scope.js';
import { waitFor } from '../helpers/wait.js';

const WAIT = { timeout: 60_000 };
const PAGE_SIZE = 10;

test('the page (chromium): the Recent tasks filters narrow the list as GET /tasks does, page with it and keep it live', async (t) => {
  const scope = testScope(t);
  const redisUrl = await testRedisUrl();
  await buildWeb();
  const gateway = await startGatewayInProcess(scope, redisUrl);
  await startWorkerInProcess(scope, redisUrl);
  const status = async (id: string) => (await request(`${gateway.url}/tasks/${id}`)).body.status as string;
  const completed = (ids: string[]) =>
    waitFor(async () => (await Promise.all(ids.map(status))).every((s) => s === 'COMPLETED'), 'seeded tasks completed', 30_000);
  /** The ids GET /tasks answers with this filter, newest first. */
  const expected = async (filter: Record<string, string>, limit = PAGE_SIZE) =>
    ((await request(`${gateway.url}/tasks?${new URLSearchParams({ ...filter, limit: String(limit) })}`)).body.tasks as { task_id: string }[]).map(
      (task) => task.task_id,
    );

  const a1 = await startTask(gateway.url, { stage_ms: 10, tags: ['team:a'] });
  const b1 = await startTask(gateway.url, { type: 'typewriter', params: { words: 3, words_per_s: 1000 }, tags: ['team:b'] });
  const bulk: string[] = [];
  for (let i = 0; i < PAGE_SIZE + 2; i++) bulk.push(await startTask(gateway.url, { stage_ms: 0, tags: ['bulk'] }));
  const s1 = await startTask(gateway.url, { stage_ms: 10, tags: ['team:a'], delay_ms: 3_600_000 });
  await completed([a1, b1, ...bulk]);

  const context = await launchBrowser(scope);
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  const listQueries: URL[] = [];
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname === '/tasks') listQueries.push(url);
  });
  await page.goto(gateway.url);
  const shown = () => page.locator('#task-list .task-link').evaluateAll((els) => els.map((e) => e.getAttribute('data-task-id')));
  const item = (id: string) => page.locator(`#task-list .task-link[data-task-id="${id}"]`);
  const showsExactly = (ids: string[], what: string) =>
    waitFor(async () => JSON.stringify(await shown()) === JSON.stringify(ids), `${what}: the list shows ${ids.join(', ')}`, 30_000).catch(
      async (err) => assert.fail(`${(err as Error).message}; it shows ${(await shown()).join(', ')}`),
    );
  const apply = async (filter: { status?: string; type?: string; tag?: string }) => {
    await page.selectOption('#filter-status', filter.status ?? '');
    await page.selectOption('#filter-type', filter.type ?? '');
    await page.fill('#filter-tag', filter.tag ?? '');
    await page.click('#apply-filters');
  };
  await item(s1).waitFor(WAIT);

  // The type filter offers the gateway's types (from /openapi.json), the status filter the fixed statuses.
  await waitFor(async () => (await page.locator('#filter-type option').count()) === 3, 'the task types loaded');
  assert.deepEqual(await page.locator('#filter-type option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value)), [
    '',
    'reference',
    'typewriter',
  ]);
  assert.deepEqual(await page.locator('#filter-status option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value)), [
    '', 'SCHEDULED', 'PENDING', 'COMPLETED', 'FAILED', 'CANCELLED',
  ]);

  await t.test('each filter narrows the list to exactly what GET /tasks answers with it', async () => {
    await apply({ status: 'SCHEDULED' });
    await showsExactly(await expected({ status: 'SCHEDULED' }), 'status=SCHEDULED');
    assert.deepEqual(await shown(), [s1]);
    assert.match((await item(s1).textContent())!, /SCHEDULED due \d\d:\d\d:\d\d\.\d{3} · reference · started/);

    await apply({ type: 'typewriter' });
    await showsExactly(await expected({ type: 'typewriter' }), 'type=typewriter');
    assert.deepEqual(await shown(), [b1]);

    await apply({ tag: 'team:a' });
    await showsExactly(await expected({ tag: 'team:a' }), 'tag=team:a');
    assert.deepEqual(await shown(), [s1, a1]);
    assert.deepEqual(await item(a1).locator('.tag').allTextContents(), ['team:a']);

    await apply({ status: 'COMPLETED', type: 'reference', tag: 'team:a' });
    await showsExactly([a1], 'all three filters');
    assert.deepEqual(await expected({ status: 'COMPLETED', type: 'reference', tag: 'team:a' }), [a1]);

    await apply({ status: 'FAILED' });
    await page.locator('#no-tasks', { hasText: 'No recent tasks match the filters.' }).waitFor(WAIT);
    assert.deepEqual(await shown(), []);
  });

  await t.test('Load more keeps the filters', async () => {
    await apply({ tag: 'bulk' });
    await showsExactly(await expected({ tag: 'bulk' }), 'tag=bulk, first page');
    assert.equal((await shown()).length, PAGE_SIZE);
    await page.click('#more-tasks');
    await showsExactly(await expected({ tag: 'bulk' }, 100), 'tag=bulk, both pages');
    assert.deepEqual(await shown(), [...bulk].reverse());
    await page.locator('#more-tasks').waitFor({ state: 'hidden', ...WAIT });
    assert.equal(listQueries.at(-1)!.searchParams.get('tag'), 'bulk');
    assert.ok(listQueries.at(-1)!.searchParams.get('cursor'), 'the second page was asked with a cursor');
  });

  await t.test('an invalid tag is an error and queries nothing', async () => {
    const before = listQueries.length;
    await apply({ tag: 'no spaces!' });
    await page.locator('#filter-error', { hasText: 'A tag is 1 to 64' }).waitFor(WAIT);
    assert.equal(await page.getAttribute('#filter-tag', 'aria-invalid'), 'true');
    assert.equal(await page.getAttribute('#filter-error', 'role'), 'alert');
    await apply({ tag: 'team:b' });
    await showsExactly([b1], 'tag=team:b');
    assert.equal(await page.getAttribute('#filter-tag', 'aria-invalid'), 'false');
    assert.ok(await page.locator('#filter-error').isHidden());
    assert.deepEqual(listQueries.slice(before).map((u) => u.searchParams.get('tag')), ['team:b'], 'only the valid filter was queried');
  });

  await t.test('live: new tasks appear only if they match; status changes move tasks out of and into a status filter', async () => {
    await apply({ tag: 'team:a' });
    await showsExactly([s1, a1], 'tag=team:a');
    const b2 = await startTask(gateway.url, { stage_ms: 10, tags: ['team:b'] });
    const a2 = await startTask(gateway.url, { stage_ms: 10, tags: ['team:a'] });
    await item(a2).locator('.badge', { hasText: 'COMPLETED' }).waitFor(WAIT);
    await completed([b2]);
    assert.deepEqual(await shown(), [a2, s1, a1], 'the matching task at the top, the other one not at all');

    // A task scheduled 1.5 s ahead: it appears under SCHEDULED, then leaves the list when it is due.
    await apply({ status: 'SCHEDULED' });
    await showsExactly([s1], 'status=SCHEDULED');
    const s2 = await startTask(gateway.url, { stage_ms: 1000, delay_ms: 1500 });
    await showsExactly([s2, s1], 'a new scheduled task at the top');
    await showsExactly([s1], 'the due task left the SCHEDULED filter');

    // Under COMPLETED, a running task is absent until it completes, then it is in its place: the newest.
    await apply({ status: 'COMPLETED', type: 'reference' });
    const completedBefore = await expected({ status: 'COMPLETED', type: 'reference' });
    await showsExactly(completedBefore, 'status=COMPLETED');
    const r = await startTask(gateway.url, { stage_ms: 300 });
    await waitFor(async () => ['STARTED', 'PROCESSING', 'CONCLUDING'].includes(await status(r)), 'the task running');
    assert.ok(!(await shown()).includes(r), 'a running task is not under COMPLETED');
    await showsExactly([r, ...completedBefore], 'the completed task entered the COMPLETED filter at the top');
    assert.match((await item(r).textContent())!, /COMPLETED 100%/);
    // s2 completes after r but was created before it: it goes below r, above the older ones.
    await showsExactly([r, s2, ...completedBefore], 's2 entered the COMPLETED filter in its place');
    assert.deepEqual(await shown(), await expected({ status: 'COMPLETED', type: 'reference' }, PAGE_SIZE + 2));
  });

  assert.deepEqual(pageErrors, []);
});
