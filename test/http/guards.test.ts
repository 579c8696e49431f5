import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SECURITY_HEADERS } from '../../src/http/security-headers.js';
import { request } from '../helpers/http.js';
import { startWorkerInProcess } from '../helpers/in-process.js';
import { startGatewayProc, type ServiceProc } from '../helpers/processes.js';
import { rawHttp, upgrade } from '../helpers/raw.js';
import { testRedisUrl } from '../helpers/redis.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

const STAGES = ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED'];

function assertSecurityHeaders(get: (name: string) => string | null | undefined, what: string): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(get(name.toLowerCase()), value, `${what}: ${name}`);
}

describe('guards with auth off, and behind a trusted proxy', () => {
  let open: ServiceProc;
  let proxied: ServiceProc;
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const scope = { after: (fn: () => unknown) => cleanups.push(fn) };

  before(async () => {
    const redisUrl = await testRedisUrl();
    open = await startGatewayProc(scope, redisUrl, { START_BURST: '3', START_REFILL_PER_S: '0.001', HTTP_HEADERS_TIMEOUT_MS: '500' });
    proxied = await startGatewayProc(scope, redisUrl, {
      TRUST_PROXY_HOPS: '1',
      WS_MAX_PER_IP: '1',
      START_BURST: '1',
      START_REFILL_PER_S: '0.001',
    });
    await startWorkerInProcess(scope, redisUrl);
  });

  test('auth off: starts carry no watch token and anyone holding the id watches', async () => {
    const res = await request(`${open.url}/tasks`, { body: { stage_ms: 0 } });
    assert.equal(res.status, 202);
    assert.equal('watch_token' in res.body, false);
    const watch = await watchTask(wsUrl(open.url, res.body.task_id));
    assert.equal(watch.code, 1000);
    assert.deepEqual(watch.events.map((e) => e.status), STAGES);
    assert.equal((await request(`${open.url}/tasks/${res.body.task_id}`)).status, 200);
  });

  test('security headers on every response: page, script, JSON, errors, refused upgrades, Node-level errors', async () => {
    const page = await request(`${open.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.body, /<script type="module" src="\/app.js"><\/script>/);
    assert.doesNotMatch(page.body, /<script>|<script(?![^>]*\bsrc=)[^>]*>/, 'the page has no inline script');
    assertSecurityHeaders((n) => page.headers.get(n), 'page');
    const csp = page.headers.get('content-security-policy')!;
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    for (const path of ['/app.js', '/tasks/nope', '/nope']) {
      const res = await request(`${open.url}${path}`);
      assertSecurityHeaders((n) => res.headers.get(n), path);
    }
    const refused = await upgrade(`${open.url.replace('http', 'ws')}/ws/nope`);
    assert.equal(refused.status, 404);
    assert.equal(refused.body.error.code, 'NOT_FOUND');
    assertSecurityHeaders((n) => refused.headers[n] as string | undefined, 'refused upgrade');
    const slow = await rawHttp(open.port, 'GET / HTTP/1.1\r\nHost: x\r\n', { trickle: { everyMs: 100, piece: 'X-Slow: 1\r\n' } });
    assert.equal(slow.status, 408);
    assert.equal(slow.body.error.code, 'REQUEST_TIMEOUT');
    assertSecurityHeaders((n) => slow.headers[n], 'slowloris 408');
  });

  test('auth off: starts are limited per client address, with Retry-After', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const res = await request(`${open.url}/start-task`, { body: { stage_ms: 0 } });
      statuses.push(res.status);
      if (res.status === 429) {
        assert.equal(res.body.error.code, 'RATE_LIMITED');
        retryAfter = res.headers.get('retry-after');
      }
    }
    // The first test used one token of the burst of 3.
    assert.deepEqual(statuses, [202, 202, 429, 429]);
    assert.ok(Number(retryAfter) >= 900, `Retry-After ${retryAfter} at 0.001 tokens/s`);
  });

  test('TRUST_PROXY_HOPS=1: the address is the last X-Forwarded-For entry; spoofed entries to its left do not matter', async () => {
    const start = (xff: string) => request(`${proxied.url}/tasks`, { body: { stage_ms: 0 }, headers: { 'x-forwarded-for': xff } });
    assert.equal((await start('203.0.113.1')).status, 202);
    assert.equal((await start('198.51.100.7, 203.0.113.1')).status, 429, 'same client behind a spoofed entry');
    assert.equal((await start('203.0.113.2')).status, 202, 'another client');

    const taskId = (await request(`${proxied.url}/tasks`, { body: { stage_ms: 600_000 }, headers: { 'x-forwarded-for': '203.0.113.3' } })).body
      .task_id as string;
    const ws = proxied.url.replace('http', 'ws');
    const first = await upgrade(`${ws}/ws/task/${taskId}`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    assert.equal(first.status, 101);
    cleanups.push(() => first.ws!.terminate());
    const second = await upgrade(`${ws}/ws/task/${taskId}`, { headers: { 'x-forwarded-for': '10.9.9.9, 203.0.113.9' } });
    assert.equal(second.status, 503);
    assert.equal(second.body.error.code, 'TOO_MANY_CONNECTIONS');
    const other = await upgrade(`${ws}/ws/task/${taskId}`, { headers: { 'x-forwarded-for': '203.0.113.10' } });
    assert.equal(other.status, 101, 'WS_MAX_PER_IP counts per forwarded client');
    other.ws!.terminate();
  });
});
