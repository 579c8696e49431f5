import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { taskPageSchema } from '../../src/http/api-schemas.js';
import { tagKey, taskKey } from '../../src/store/keys.js';
import { LIST_SCAN_MAX, TaskStore } from '../../src/store/task-store.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';

interface Made {
  id: string;
  type: string;
  status: string;
  tags: string[];
  created: number;
}

/** Every page of GET /tasks with `query`; each page is checked against the schema. */
async function listAll(base: string, query: string, limit: number): Promise<{ ids: string[]; pages: number; shortPages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  let shortPages = 0;
  do {
    const more: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const res = await request(`${base}/tasks?limit=${limit}&${query}${more}`);
    assert.equal(res.status, 200, `${query}: ${JSON.stringify(res.body)}`);
    const page = taskPageSchema.parse(res.body);
    ids.push(...page.tasks.map((t) => t.task_id));
    if (page.tasks.length < limit && page.next_cursor !== null) shortPages++;
    cursor = page.next_cursor;
    pages++;
    assert.ok(pages < 500, 'pagination terminates');
  } while (cursor !== null);
  return { ids, pages, shortPages };
}

/** Newest first, ties by task id descending: the index order. */
const newestFirst = (a: Made, b: Made) => b.created - a.created || (a.id < b.id ? 1 : -1);

describe('GET /tasks filters', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, { TASK_TTL_S: '3600' });
  });

  test('status, type, tag and creation time, alone and combined: every match exactly once, in order', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const store = new TaskStore(redis, { ttlS: 3600 });
    const base = Date.now() - 600_000;
    const made: Made[] = [];
    for (let i = 0; i < 150; i++) {
      const type = i % 4 === 0 ? 'typewriter' : 'reference';
      const tags = [...(i % 3 === 0 ? ['red'] : []), ...(i % 5 === 0 ? ['customer:42'] : [])];
      // Pairs share a millisecond, so ties are paged too.
      const created = base + Math.floor(i / 2) * 1000;
      const { state } = await store.start(type, {}, created, { tags });
      made.push({ id: state.task_id, type, status: 'PENDING', tags, created });
    }
    for (const m of made.filter((_, i) => i % 7 === 0)) {
      assert.equal((await store.cancel(m.id)).outcome, 'cancelled');
      m.status = 'CANCELLED';
    }
    const at = (i: number) => base + i * 1000;
    const cases: [string, (m: Made) => boolean][] = [
      ['', () => true],
      ['status=CANCELLED', (m) => m.status === 'CANCELLED'],
      ['type=typewriter', (m) => m.type === 'typewriter'],
      ['tag=red', (m) => m.tags.includes('red')],
      ['tag=customer:42&status=PENDING', (m) => m.tags.includes('customer:42') && m.status === 'PENDING'],
      [`created_after=${at(20)}&created_before=${at(40)}`, (m) => m.created >= at(20) && m.created < at(40)],
      [
        `created_after=${new Date(at(10)).toISOString()}&tag=red&type=reference&status=CANCELLED`,
        (m) => m.created >= at(10) && m.tags.includes('red') && m.type === 'reference' && m.status === 'CANCELLED',
      ],
      ['status=COMPLETED', () => false],
      ['tag=nobody', () => false],
    ];
    for (const [query, keep] of cases) {
      const expected = made.filter(keep).sort(newestFirst).map((m) => m.id);
      for (const limit of [1, 7, 100]) {
        const { ids } = await listAll(gateway.url, query, limit);
        assert.deepEqual(ids, expected, `${query} limit=${limit}`);
      }
    }
    const one = await request(`${gateway.url}/tasks/${made[0]!.id}`);
    assert.deepEqual(one.body.tags, ['red', 'customer:42']);
    const page = await request(`${gateway.url}/tasks?tag=red&limit=1`);
    assert.deepEqual(page.body.tasks[0].tags, ['red']);
  });

  test('a filter that drops more entries than one call examines answers short pages with a cursor, never a false end', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await redis.flushall();
    const store = new TaskStore(redis, { ttlS: 3600 });
    const now = Date.now();
    const oldest = (await store.start('typewriter', {}, now - 10_000)).state.task_id;
    await Promise.all(Array.from({ length: LIST_SCAN_MAX + 200 }, (_, i) => store.start('reference', {}, now - 5000 + i)));
    const newest = (await store.start('typewriter', {}, now + 1)).state.task_id;

    const { ids, pages, shortPages } = await listAll(gateway.url, 'type=typewriter', 5);
    assert.deepEqual(ids, [newest, oldest]);
    assert.equal(pages, 2);
    assert.equal(shortPages, 1);
  });

  test('bad filter values are 400 INVALID_QUERY', async () => {
    for (const query of [
      'status=', 'status=%21%21%21', `status=${'S'.repeat(65)}`, 'status=9LIVES', 'type=', `type=${'t'.repeat(101)}`, 'tag=', 'tag=two%20words', `tag=${'t'.repeat(65)}`,
      'created_after=yesterday', 'created_after=2026-01-01', 'created_before=2026-01-01T00:00:00', 'created_before=-5',
      'created_after=1.5', 'created_after=9999999999999999',
    ]) {
      const res = await request(`${gateway.url}/tasks?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error.code, 'INVALID_QUERY', query);
    }
    for (const query of ['created_after=0', 'created_before=2026-01-01T00:00:00.000%2B02:00', 'status=FAILED', 'status=Checking%20inputs', 'tag=a.b/c=d@e%2Bf-g_h']) {
      assert.equal((await request(`${gateway.url}/tasks?${query}`)).status, 200, query);
    }
  });
});

describe('tags on POST /tasks', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, { TASK_TTL_S: '3600' });
  });

  test('are stored in the hash as a JSON array, answered, and indexed per tag', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const tags = Array.from({ length: 10 }, (_, i) => `t${i}`);
    const res = await request(`${gateway.url}/tasks`, { method: 'POST', body: { tags } });
    assert.equal(res.status, 202);
    assert.deepEqual(res.body.tags, tags);
    const id = res.body.task_id;
    assert.equal(await redis.hget(taskKey(id), 'tags'), JSON.stringify(tags));
    assert.deepEqual((await request(`${gateway.url}/tasks/${id}`)).body.tags, tags);
    for (const tag of tags) {
      assert.deepEqual(await redis.zrange(tagKey(tag), '0', '-1'), [id]);
      const ttl = await redis.ttl(tagKey(tag));
      assert.ok(ttl > 3500 && ttl <= 3600, `ttl ${String(ttl)}`);
    }
    for (const body of [{}, { tags: [] }]) {
      const plain = await request(`${gateway.url}/tasks`, { method: 'POST', body });
      assert.equal(plain.status, 202);
      assert.equal(plain.body.tags, undefined);
      assert.equal(await redis.hexists(taskKey(plain.body.task_id), 'tags'), 0);
    }
  });

  test('a tag index drops entries older than TASK_TTL_S when the tag is next written', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const store = new TaskStore(redis, { ttlS: 3600 });
    const now = Date.now();
    const old = (await store.start('reference', {}, now - 3_700_000, { tags: ['aging'] })).state.task_id;
    const edge = (await store.start('reference', {}, now - 3_500_000, { tags: ['aging'] })).state.task_id;
    assert.deepEqual((await redis.zrange(tagKey('aging'), '0', '-1')).sort(), [edge, old].sort());
    const fresh = (await store.start('reference', {}, now, { tags: ['aging'] })).state.task_id;
    assert.deepEqual(await redis.zrange(tagKey('aging'), '0', '-1'), [edge, fresh]);
  });

  test('bad tags are 400 INVALID_BODY and start nothing', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await redis.flushall();
    for (const tags of [
      Array.from({ length: 11 }, (_, i) => `t${i}`), ['dup', 'dup'], [''], ['two words'], ['t'.repeat(65)], ['é'], [3], 'red', null,
    ]) {
      const res = await request(`${gateway.url}/tasks`, { method: 'POST', body: { tags } });
      assert.equal(res.status, 400, JSON.stringify(tags));
      assert.equal(res.body.error.code, 'INVALID_BODY', JSON.stringify(tags));
    }
    assert.deepEqual(await redis.keys('*'), []);
  });

  test('a tag index holding the wrong type fails that start alone, and writes nothing for it', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await redis.set(tagKey('broken'), 'not a sorted set');
    const before = await redis.dbsize();
    const res = await request(`${gateway.url}/tasks`, { method: 'POST', body: { tags: ['fine', 'broken'] } });
    assert.equal(res.status, 409);
    assert.deepEqual([res.body.error.code, res.body.error.details], ['DATA_CORRUPTED', { key: tagKey('broken') }]);
    assert.equal(await redis.dbsize(), before);
    assert.equal((await request(`${gateway.url}/tasks`, { method: 'POST', body: { tags: ['fine'] } })).status, 202);
  });
});
