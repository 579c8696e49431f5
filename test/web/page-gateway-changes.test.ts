import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.js';
import { API_TOKEN, AUTH_ENV } from '../helpers/auth.js';
import { launchBrowser } from '../helpers/browser.js';
import { startRestartableGateway, type RestartableGateway } from '../helpers/gateway-restart.js';
import { request } from '../helpers/http.js';
import { startWorkerInProcess } from '../helpers/in-process.js';
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
