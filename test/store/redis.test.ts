import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeRedis } from '../../src/store/redis.js';
import { connectRedis } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

test('closeRedis ends a client whose server no longer answers (SIGSTOPped) instead of waiting for its QUIT', async (t) => {
  const server = await startRedisServer();
  t.after(async () => {
    server.process.kill('SIGCONT');
    await server.close();
  });
  const client = await connectRedis(server.url);
  t.after(() => client.disconnect());
  server.process.kill('SIGSTOP');
  await withTimeout(closeRedis(client), 'closeRedis of a client whose server is stopped', 10_000);
  await waitFor(() => client.status === 'end', 'the client ended');
  await closeRedis(client);
  assert.equal(client.status, 'end');
});
