import assert from 'node:assert/strict';
import { test } from 'node:test';
import { feedKey, idempotencyKey, tagKey } from '../../src/store/keys.js';
import { feedUrl, followFeed } from '../helpers/feed-client.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess } from '../helpers/in-process.js';
import { MuxClient } from '../helpers/mux-client.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';

test('a tag index or a feed that holds the wrong type answers 409 DATA_CORRUPTED naming the key (close 4409, /ws ended 4409); the rest is served', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayInProcess(t, url);
  await redis.set(tagKey('wt1'), 'x');
  await redis.set(feedKey('wt2'), 'x');
  const corrupted = (key: string) => ({
    error: { code: 'DATA_CORRUPTED', message: `${key} is corrupted: WRONGTYPE ${key} holds a string, not a zset`, details: { key } },
  });

  const start = await request(`${gateway.url}/tasks`, { method: 'POST', body: { stage_ms: 0, tags: ['wt1'] } });
  assert.deepEqual([start.status, start.body], [409, corrupted(tagKey('wt1'))], 'the start names the tag index, not a task');
  assert.deepEqual(await redis.keys('task:*'), [], 'nothing was created');

  const list = await request(`${gateway.url}/tasks?tag=wt1`);
  assert.equal(list.status, 409);
  assert.deepEqual([list.body.error.code, list.body.error.details], ['DATA_CORRUPTED', { key: tagKey('wt1') }]);

  const sse = await request(`${gateway.url}/sse/feed?tag=wt2&lastEventId=0`);
  assert.equal(sse.status, 409);
  assert.deepEqual([sse.body.error.code, sse.body.error.details], ['DATA_CORRUPTED', { key: feedKey('wt2') }]);
  for (const lastEventId of ['0', undefined]) {
    const ws = await followFeed(feedUrl(gateway.url, { tag: 'wt2', lastEventId }));
    assert.equal(ws.code, 4409, `/ws/feed from ${lastEventId ?? 'its end'}`);
    assert.match(ws.reason, /^tasks:feed:tag:wt2 is corrupted: WRONGTYPE/);
  }
  const mux = await MuxClient.open(t, gateway.url);
  mux.send({ type: 'subscribe', feed: 'tag:wt2', lastEventId: '0' });
  assert.equal((await mux.feedEnded('tag:wt2')).code, 4409);

  await redis.hset(idempotencyKey('global', 'bad'), 'a', 'b');
  const idem = await request(`${gateway.url}/tasks`, { method: 'POST', body: { stage_ms: 0 }, headers: { 'idempotency-key': 'bad' } });
  assert.deepEqual([idem.status, idem.body.error.code, idem.body.error.details], [409, 'DATA_CORRUPTED', { key: idempotencyKey('global', 'bad') }]);
  assert.match(idem.body.error.message, /holds a hash, not a string$/);
  assert.deepEqual(await redis.keys('task:*'), [], 'nothing was created');

  // A start with the corrupted feed's tag is recorded (the feeds are a view and never stop a task's writes).
  assert.equal((await request(`${gateway.url}/tasks`, { method: 'POST', body: { stage_ms: 0, tags: ['wt2'] } })).status, 202);
  const other = await startTask(gateway.url, { stage_ms: 0, tags: ['fine'] });
  const listed = await request(`${gateway.url}/tasks?tag=fine`);
  assert.deepEqual([listed.status, listed.body.tasks.map((s: { task_id: string }) => s.task_id)], [200, [other]]);
});
