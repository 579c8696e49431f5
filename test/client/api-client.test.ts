import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ApiClient, ApiError, type WatchTokenGrant } from '../../src/client/api-client.js';
import { WatchTokens } from '../../src/client/watch-tokens.js';
import { watchTokenSchema } from '../../src/http/api-schemas.js';
import { API_TOKEN, AUTH_ENV, WATCH_TOKEN_RE } from '../helpers/auth.js';
import { inProcessTestTasksEnv, startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';
import { eventIds, waitForEnd } from '../helpers/task-log.js';
import { createRegistry } from '../../src/tasks/builtin/index.js';
import { loadTaskModules } from '../../src/tasks/task-modules.js';

const UNKNOWN = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';

async function refusal(call: Promise<unknown>): Promise<ApiError> {
  const err = await call.then(() => assert.fail('expected a refusal'), (e: unknown) => e);
  assert.ok(err instanceof ApiError, String(err));
  return err;
}

/** An ApiClient that counts the watch tokens it asks for (real requests, counted). */
class CountingClient extends ApiClient {
  asked = 0;
  override watchToken(taskId: string): Promise<WatchTokenGrant> {
    this.asked++;
    return super.watchToken(taskId);
  }
}

describe('ApiClient and WatchTokens against a gateway with auth on', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, AUTH_ENV);
    await startWorkerInProcess(scope, redisUrl);
  });

  test('without a token or with a wrong one every call is refused 401; the token goes as a header and works for every call', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const none = await refusal(new ApiClient(gateway.url).list());
    assert.deepEqual([none.status, none.code], [401, 'UNAUTHORIZED']);
    const wrong = await refusal(new ApiClient(gateway.url, { token: 'not-the-token' }).start({ params: { stage_ms: 0 } }));
    assert.deepEqual([wrong.status, wrong.code, wrong.message], [401, 'UNAUTHORIZED', 'invalid API token']);
    assert.ok(!wrong.message.includes('not-the-token'), 'the message never echoes the token');

    const api = new ApiClient(gateway.url, { token: API_TOKEN });
    const started = await api.start({ params: { stage_ms: 0 } });
    assert.match(started.watch_token ?? '', WATCH_TOKEN_RE, 'a start with auth on answers a watch token');
    assert.equal(await waitForEnd(redis, started.task_id), 'COMPLETED');
    assert.equal((await api.get(started.task_id)).status, 'COMPLETED');
    assert.deepEqual((await api.events(started.task_id)).map((e) => e.id), await eventIds(redis, started.task_id));
    assert.equal((await api.output(started.task_id)).status, 'COMPLETED');
    assert.ok((await api.list()).tasks.some((s) => s.task_id === started.task_id));
    const finished = await refusal(api.cancel(started.task_id));
    assert.equal(finished.code, 'TASK_ALREADY_FINISHED', 'cancel got past auth');

    // The token option as a function is asked before every request: sign in and out without a new client.
    let current: string | undefined;
    const switching = new ApiClient(gateway.url, { token: () => current });
    assert.equal((await refusal(switching.list())).status, 401);
    current = API_TOKEN;
    assert.ok(Array.isArray((await switching.list()).tasks));
    current = undefined;
    assert.equal((await refusal(switching.list())).status, 401);
  });

  test('taskTypes needs no token (GET /openapi.json is public) and lists the built-in types', async () => {
    assert.deepEqual(await new ApiClient(gateway.url).taskTypes(), ['reference', 'typewriter']);
  });

  test('watchToken: an API token buys a watch token for one task, valid for that task only, for WATCH_TOKEN_TTL_S', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const api = new ApiClient(gateway.url, { token: API_TOKEN });
    const { task_id: taskId } = await api.start({ params: { stage_ms: 0 } });
    const { task_id: other } = await api.start({ params: { stage_ms: 0 } });
    await waitForEnd(redis, taskId);
    const before = Date.now();
    const grant = await api.watchToken(taskId.toUpperCase());
    assert.deepEqual(watchTokenSchema.parse(grant), grant, 'the answer is as /openapi.json documents it');
    assert.equal(grant.task_id, taskId, 'the canonical id');
    assert.match(grant.watch_token!, WATCH_TOKEN_RE);
    assert.ok(grant.expires_at! >= Math.floor(before / 1000) * 1000 + 600_000 && grant.expires_at! <= Date.now() + 600_000, String(grant.expires_at));

    const watch = new ApiClient(gateway.url, { token: grant.watch_token! });
    assert.equal((await watch.get(taskId)).status, 'COMPLETED', 'the watch token reads its task');
    assert.equal((await refusal(watch.get(other))).status, 401, 'and no other');
    assert.equal((await refusal(watch.list())).status, 401, 'and cannot list');
    assert.equal((await refusal(watch.watchToken(taskId))).status, 401, 'nor buy watch tokens');
    assert.equal((await refusal(new ApiClient(gateway.url).watchToken(taskId))).status, 401);
    assert.equal((await refusal(api.watchToken('not-a-task'))).code, 'INVALID_TASK_ID');
    const unknown = await api.watchToken(UNKNOWN);
    assert.match(unknown.watch_token!, WATCH_TOKEN_RE, 'nothing is read: an unknown task gets one too (its watch ends 4404)');
  });

  test('WatchTokens keeps one token per task until a minute before it expires; concurrent gets share one request', async () => {
    const api = new CountingClient(gateway.url, { token: API_TOKEN });
    let now = Date.now();
    const tokens = new WatchTokens(api, () => now);
    const [a, b] = await Promise.all([tokens.get(UNKNOWN), tokens.get(UNKNOWN)]);
    assert.equal(a, b);
    assert.equal(api.asked, 1);
    assert.equal(await tokens.get(UNKNOWN), a);
    assert.equal(api.asked, 1, 'kept');
    now += 600_000 - 60_000;
    assert.match((await tokens.get(UNKNOWN))!, WATCH_TOKEN_RE);
    assert.equal(api.asked, 2, 'renewed a minute before it expires');
    tokens.clear();
    await tokens.get(UNKNOWN);
    assert.equal(api.asked, 3, 'clear forgets');

    const refused = new WatchTokens(new ApiClient(gateway.url, { token: 'wrong' }));
    assert.equal((await refusal(refused.get(UNKNOWN))).status, 401, 'a refusal reaches the caller');
  });
});

describe('ApiClient and WatchTokens against a gateway with auth off', () => {
  const scope = suiteScope();

  test('watchToken answers null: watching needs no token; WatchTokens gives undefined', async () => {
    const gateway = await startGatewayInProcess(scope, await testRedisUrl());
    const api = new ApiClient(gateway.url, { token: 'ignored-when-auth-is-off' });
    assert.deepEqual(await api.watchToken(UNKNOWN), { task_id: UNKNOWN, watch_token: null, expires_at: null });
    assert.equal(await new WatchTokens(api).get(UNKNOWN), undefined);
  });

  test('taskTypes lists the types of TASK_MODULES too, as the gateway registered them', async () => {
    const env = inProcessTestTasksEnv();
    const gateway = await startGatewayInProcess(scope, await testRedisUrl(), env);
    const registry = await loadTaskModules(createRegistry({ STAGE_MS: 1000 }), [env.TASK_MODULES]);
    const types = await new ApiClient(gateway.url).taskTypes();
    assert.deepEqual(types, registry.names());
    assert.ok(types.includes('flaky') && types.includes('typewriter'));
  });
});
