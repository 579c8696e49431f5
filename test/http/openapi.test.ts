import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import {
  errorBodySchema,
  eventListSchema,
  probeReplySchema,
  taskEventSchema,
  taskStateSchema,
} from '../../src/http/api-schemas.js';
import { buildOpenApiDocument } from '../../src/http/openapi.js';
import { PROBE_PATHS } from '../../src/health/probes.js';
import { createRegistry } from '../../src/tasks/builtin/index.js';
import { CloseCode } from '../../src/wire/close-codes.js';
import { SubscriptionCode } from '../../src/wire/mux.js';
import { request, startTask } from '../helpers/http.js';
import { appRouter } from '../helpers/app-router.js';
import { startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { suiteScope } from '../helpers/scope.js';
import { testRedisUrl } from '../helpers/redis.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

const registry = createRegistry({ STAGE_MS: 5000 });
const document = buildOpenApiDocument(registry) as any;

/** `/tasks/:id` -> `/tasks/{id}`. */
const toOpenApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

describe('/openapi.json, generated from the zod schemas', () => {
  test('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    assert.equal(document.openapi, '3.1.0');
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    assert.deepEqual(result.errors, undefined);
    assert.equal(result.valid, true);
    assert.equal(validator.version, '3.1');
  });

  test('every route of the router is documented, with its path parameters', async (t) => {
    const router = appRouter(t, registry);
    const routes = router.stack.flatMap((layer) =>
      layer.methods.filter((m) => m !== 'HEAD').map((m) => ({ method: m.toLowerCase(), path: String(layer.path) })),
    );
    assert.ok(routes.length >= 8, `found ${routes.length} routes`);
    for (const { method, path } of routes) {
      const operation = document.paths[toOpenApiPath(path)]?.[method];
      assert.ok(operation, `${method.toUpperCase()} ${path} is not in /openapi.json`);
      const names = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]);
      const documented = (operation.parameters ?? []).filter((p: any) => p.in === 'path').map((p: any) => p.name);
      assert.deepEqual(documented, names, `path parameters of ${method} ${path}`);
      assert.ok(Object.keys(operation.responses).length > 0);
    }
    assert.ok(routes.some((r) => r.path === '/sse/task/:id'), 'the SSE route is in the router');
    // The probes (a middleware ahead of the router) and the WebSocket upgrade are not router routes.
    for (const path of PROBE_PATHS) assert.ok(document.paths[path]?.get, `${path} is not documented`);
    const served = new Set(routes.map((r) => `${r.method} ${toOpenApiPath(r.path)}`));
    for (const [path, item] of Object.entries<any>(document.paths)) {
      for (const method of Object.keys(item)) {
        if (item[method]['x-websocket'] || (PROBE_PATHS as readonly string[]).includes(path)) continue;
        assert.ok(served.has(`${method} ${path}`), `${method} ${path} is documented but not routed`);
      }
    }
  });

  test('error answers reference the error body; the task routes reference the shared schemas', () => {
    const post = document.paths['/tasks'].post;
    assert.equal(post.responses['202'].content['application/json'].schema.$ref, '#/components/schemas/StartedTask');
    for (const status of ['400', '413', '415', '500', '503']) {
      assert.equal(post.responses[status].content['application/json'].schema.$ref, '#/components/schemas/ErrorBody', status);
    }
    assert.deepEqual(
      post.requestBody.content['application/json'].schema.properties.params.anyOf.map((p: { $ref: string }) => p.$ref),
      ['#/components/schemas/Params_reference', '#/components/schemas/Params_typewriter'],
    );
    assert.deepEqual(document.components.schemas.Params_reference.properties.stage_ms, {
      type: 'integer', minimum: 0, maximum: 600000, default: 5000,
    });
    assert.equal(document.paths['/tasks/{id}'].get.responses['404'].content['application/json'].schema.$ref, '#/components/schemas/ErrorBody');
    assert.match(document.paths['/tasks/{id}/cancel'].post.responses['409'].description, /TASK_ALREADY_FINISHED/);
    const sse = document.paths['/sse/task/{id}'].get;
    assert.equal(sse['x-sse'].message.$ref, '#/components/schemas/TaskEvent');
    assert.ok(sse.responses['200'].content['text/event-stream']);
    assert.deepEqual(sse.parameters.map((p: any) => [p.in, p.name]), [['path', 'id'], ['query', 'lastEventId'], ['query', 'token'], ['header', 'Last-Event-ID']]);
    assert.equal(document.paths['/readyz'].get.responses['503'].content['application/json'].schema.$ref, '#/components/schemas/ProbeReply');
  });

  test('starts document Idempotency-Key, the replay answer and 422; the list documents its filters', () => {
    for (const path of ['/tasks', '/start-task']) {
      const post = document.paths[path].post;
      const header = post.parameters.find((p: any) => p.in === 'header' && p.name === 'Idempotency-Key');
      assert.deepEqual([header.required, header.schema.maxLength], [false, 255], path);
      assert.equal(post.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/StartedTask');
      assert.ok(post.responses['200'].headers['Idempotent-Replayed'], path);
      assert.match(post.responses['422'].description, /IDEMPOTENCY_KEY_REUSED/);
      assert.match(post.responses['400'].description, /INVALID_IDEMPOTENCY_KEY/);
      assert.equal(post.requestBody.content['application/json'].schema.properties.tags.maxItems, 10);
    }
    const list = document.paths['/tasks'].get.parameters.map((p: any) => `${p.in}:${p.name}`);
    assert.deepEqual(list, ['query:limit', 'query:cursor', 'query:status', 'query:type', 'query:tag', 'query:created_after', 'query:created_before']);
    assert.ok(document.components.schemas.TaskState.properties.tags);
  });

  test('the WebSocket endpoint: message schema and every close code', () => {
    const ws = document.paths['/ws/task/{id}'].get;
    assert.equal(ws['x-websocket'].message.$ref, '#/components/schemas/TaskEvent');
    const codes = ws['x-websocket'].closeCodes.map((c: { code: number }) => c.code).sort();
    assert.deepEqual(codes, Object.values(CloseCode).sort());
    for (const code of Object.values(CloseCode)) assert.match(ws.description, new RegExp(`- ${code} `));
    assert.deepEqual(ws.parameters.map((p: any) => [p.in, p.name]), [['path', 'id'], ['query', 'lastEventId'], ['query', 'token'], ['query', 'batch']]);
    for (const path of ['/ws/task/{id}', '/ws/feed', '/ws']) {
      const batch = document.paths[path].get.parameters.find((p: any) => p.name === 'batch');
      assert.deepEqual([...batch.schema.enum].sort(), ['0', '1', 'false', 'true'], path);
      assert.ok(document.paths[path].get.responses[400], path);
    }
  });

  test('the multiplexed endpoint /ws: its messages are components, every subscription code is described', () => {
    const mux = document.paths['/ws'].get['x-websocket'];
    const refs = [...mux.clientMessages, ...mux.serverMessages].map((m: { $ref: string }) => m.$ref.replace('#/components/schemas/', ''));
    assert.deepEqual(refs, [
      'MuxSubscribe', 'MuxUnsubscribe', 'MuxFeedSubscribe', 'MuxFeedUnsubscribe',
      'TaskEvent', 'MuxSubscribed', 'MuxEnded', 'MuxUnsubscribed', 'MuxFeedEntry', 'MuxFeedSubscribed', 'MuxFeedEnded', 'MuxFeedUnsubscribed', 'MuxError',
    ]);
    for (const name of refs) assert.ok(document.components.schemas[name], name);
    assert.deepEqual(mux.subscriptionCodes.map((c: { code: number }) => c.code), Object.values(SubscriptionCode));
    for (const c of mux.subscriptionCodes) assert.ok(c.meaning.length > 10, String(c.code));
    assert.deepEqual(document.components.schemas.MuxSubscribe.required, ['type', 'task']);
    assert.deepEqual(document.components.schemas.MuxFeedSubscribe.required, ['type', 'feed']);
    assert.deepEqual(document.components.schemas.MuxFeedEntry.required, ['id', 'task_id', 'type', 'status', 'progress', 'tags', 'ts', 'feed']);
  });
});

describe('served by a gateway: /openapi.json, /docs, and answers that match the schemas', () => {
  let gateway: InProcessGateway;
  const scope = suiteScope();

  before(async () => {
    const redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, { STAGE_MS: '0' });
    await startWorkerInProcess(scope, redisUrl);
  });

  test('GET /openapi.json is the generated document', async () => {
    const res = await request(`${gateway.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^application\/json/);
    // This gateway runs with STAGE_MS=0, the default of the reference task's stage_ms.
    assert.deepEqual(res.body, JSON.parse(JSON.stringify(buildOpenApiDocument(createRegistry({ STAGE_MS: 0 })))));
  });

  test('GET /docs: Swagger UI from node_modules, no external URL, no inline script', async () => {
    const res = await request(`${gateway.url}/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    const html = res.body as string;
    assert.doesNotMatch(html, /https?:\/\//, 'no CDN');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is a file');
    assert.doesNotMatch(html, /\son\w+=/, 'no inline handlers');
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(assets.sort(), ['/docs/favicon-32x32.png', '/docs/init.js', '/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css']);
    const types: Record<string, RegExp> = { png: /^image\/png/, js: /javascript/, css: /^text\/css/ };
    for (const asset of assets) {
      const r = await fetch(`${gateway.url}${asset}`);
      assert.equal(r.status, 200, asset);
      assert.match(r.headers.get('content-type')!, types[asset.split('.').pop()!]!, asset);
      const body = await r.text();
      if (asset.endsWith('swagger-ui-bundle.js')) assert.match(body, /SwaggerUIBundle/);
      if (asset.endsWith('init.js')) assert.match(body, /url: '\/openapi\.json'/);
    }
  });

  test('/docs serves only its listed files', async () => {
    for (const path of ['/docs/package.json', '/docs/index.js', '/docs/..%2Fpackage.json', '/docs/swagger-initializer.js']) {
      const res = await request(`${gateway.url}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(errorBodySchema.parse(res.body).error.code, 'NOT_FOUND', path);
    }
  });

  test('real answers parse with the documented schemas (strict: no undocumented field)', async () => {
    const started = await request(`${gateway.url}/tasks`, { body: { stage_ms: 0 } });
    assert.equal(started.status, 202);
    const state = taskStateSchema.strict().parse(started.body);
    const result = await watchTask(wsUrl(gateway.url, state.task_id));
    assert.equal(result.code, 1000);
    for (const event of result.events) taskEventSchema.strict().parse(event);

    const got = await request(`${gateway.url}/tasks/${state.task_id}`);
    assert.equal(taskStateSchema.strict().parse(got.body).status, 'COMPLETED');
    const events = await request(`${gateway.url}/tasks/${state.task_id}/events`);
    const list = eventListSchema.strict().parse(events.body);
    assert.equal(list.events.length, 5);
    for (const event of list.events) taskEventSchema.strict().parse(event);

    const errors = [
      await request(`${gateway.url}/tasks/not-a-uuid`),
      await request(`${gateway.url}/tasks/${crypto.randomUUID()}`),
      await request(`${gateway.url}/tasks`, { body: { stage_ms: -1 } }),
      await request(`${gateway.url}/tasks`, { raw: 'x', headers: { 'content-type': 'text/plain' } }),
      await request(`${gateway.url}/nowhere`),
    ];
    assert.deepEqual(errors.map((e) => e.status), [400, 404, 400, 415, 404]);
    for (const e of errors) errorBodySchema.strict().parse(e.body);

    const sse = await fetch(`${gateway.url}/sse/task/${state.task_id}`);
    assert.match(sse.headers.get('content-type')!, /^text\/event-stream/);
    const frames = (await sse.text()).split('\n\n').filter((f) => f.startsWith('id: '));
    assert.equal(frames.length, 5);
    for (const frame of frames) taskEventSchema.strict().parse(JSON.parse(frame.split('\ndata: ')[1]!));
    const sseMissing = await request(`${gateway.url}/sse/task/${crypto.randomUUID()}`);
    assert.equal(sseMissing.status, 404);
    errorBodySchema.strict().parse(sseMissing.body);

    const finished = await request(`${gateway.url}/tasks/${state.task_id}/cancel`, { method: 'POST' });
    assert.equal(finished.status, 409);
    assert.equal(errorBodySchema.strict().parse(finished.body).error.code, 'TASK_ALREADY_FINISHED');

    for (const path of PROBE_PATHS) {
      const probe = await request(`${gateway.url}${path}`);
      assert.equal(probe.status, 200, path);
      probeReplySchema.strict().parse(probe.body);
    }
    assert.ok(await startTask(gateway.url, { stage_ms: 0 }));
  });
});
