import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.js';
import { API_TOKEN, AUTH_ENV } from '../helpers/auth.js';
import { launchBrowser } from '../helpers/browser.js';
import { startRestartableGateway, type RestartableGateway } from '../helpers/gateway-restart.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';

const WAIT = { timeout: 60_000 };
const ROTATED = 'tok-rotated-5c1e88';

/**
 * The page while its gateway changes under it: an outage with no card open, then a rotation of
 * the API tokens, each seen only through the page's one socket (no request of the page's own).
 */
describe('the page across gateway outages and token rotations, in chromium', () => {
  let gateway: RestartableGateway;
  let context: BrowserContext;
  let page: Page;
  const scope = suiteScope();

  before(async () => {
    const redisUrl = await testRedisUrl();
    await buildWeb();
    gateway = await startRestartableGateway(scope, redisUrl, AUTH_ENV);
    await startWorkerInProcess(scope, redisUrl);
    context = await launchBrowser(scope);
    page = await context.newPage();
    await page.goto(gateway.url);
    await page.fill('#api-token', API_TOKEN);
    await page.click('#sign-in-button');
    await page.locator('#app').waitFor(WAIT);
  });

  test('a failed start\'s error clears when the list\'s feed is live again, with no card open', async () => {
    await gateway.kill();
    await page.fill('#stage-s', '0');
    await page.click('#start-button');
    const error = page.locator('#start-error');
    await page.locator('#start-error', { hasText: 'Could not start a task' }).waitFor(WAIT);
    assert.equal(await page.locator('.card').count(), 0);
    await gateway.restart();
    await page.waitForFunction(() => document.querySelector('#start-error')?.textContent === '', undefined, WAIT);
    assert.equal(await error.textContent(), '');
  });

  test('a token rotated away while the page is open brings the sign-in form back, with the reason', async () => {
    await gateway.kill();
    await gateway.restart({ API_TOKENS: ROTATED });
    await page.locator('#sign-in').waitFor(WAIT);
    assert.equal(await page.locator('#app').isHidden(), true);
    assert.equal(await page.locator('#sign-in-error').textContent(), 'The gateway no longer accepts your token: sign in again.');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the refused token is forgotten');

    await page.fill('#api-token', ROTATED);
    await page.click('#sign-in-button');
    await page.locator('#app').waitFor(WAIT);
    const started = await request(`${gateway.url}/tasks`, { body: { stage_ms: 0 }, headers: { authorization: `Bearer ${ROTATED}` } });
    assert.equal(started.status, 202);
    await page.locator(`#task-list .task-link[data-task-id="${started.body.task_id}"]`).waitFor(WAIT);
  });
});

describe('the page at the gateway\'s subscription limit, in chromium', () => {
  const scope = suiteScope();

  test('a card over WS_MAX_SUBSCRIPTIONS says the gateway is busy (not disconnected) and goes live once a subscription frees', async () => {
    const redisUrl = await testRedisUrl();
    await buildWeb();
    // The list's feed is one subscription, the first card the second.
    const gateway = await startGatewayInProcess(scope, redisUrl, { WS_MAX_SUBSCRIPTIONS: '2' });
    await startWorkerInProcess(scope, redisUrl);
    const context = await launchBrowser(scope);
    const page = await context.newPage();
    await page.goto(gateway.url);
    const [first, second] = [await startTask(gateway.url, { stage_ms: 60_000 }), await startTask(gateway.url, { stage_ms: 100 })];
    await page.evaluate((id) => (location.hash = `task=${id}`), first);
    await page.locator(`.card[data-task-id="${first}"] .conn[data-state="live"]`).waitFor(WAIT);
    await page.evaluate((id) => (location.hash = `task=${id}`), second);
    const conn = page.locator(`.card[data-task-id="${second}"] .conn`);
    await page.locator(`.card[data-task-id="${second}"] .conn`, { hasText: 'The gateway is busy' }).waitFor(WAIT);
    assert.match((await conn.textContent())!, /at most 2 subscriptions per connection/);
    assert.equal(await page.locator(`.card[data-task-id="${second}"] .log li.note`).count(), 0, 'no "Disconnected" note');
    await page.locator(`.card[data-task-id="${first}"] button.dismiss`).click();
    await page.locator(`.card[data-task-id="${second}"] .badge`, { hasText: 'COMPLETED' }).waitFor(WAIT);
  });
});
