import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { BATCH_MAX_BYTES } from '../../src/wire/frames.js';
import { FrameWriter } from '../../src/ws/frame-writer.js';
import { testScope } from '../helpers/scope.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

/** A message of `bytes` bytes of JSON: a string of `char` (1 or 2 bytes in UTF-8). */
const message = (bytes: number, char = 'x') => JSON.stringify(char.repeat((bytes - 2) / Buffer.byteLength(char)));

/** A real WebSocket pair: the server's FrameWriter (batched or not) and what the client receives, frame by frame. */
async function pair(t: TestContext, batched: boolean) {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  const accepted = new Promise<{ ws: WebSocket; socket: Duplex }>((resolve) => {
    server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => resolve({ ws, socket })));
  });
  const scope = testScope(t);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scope.after(() => new Promise((resolve) => server.close(resolve)));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  scope.after(() => client.terminate());
  const frames: string[] = [];
  client.on('message', (data) => frames.push(String(data)));
  const closed = new Promise<number>((resolve) => client.on('close', resolve));
  const { ws, socket } = await withTimeout(accepted, 'the upgrade');
  scope.after(() => ws.terminate());
  return { writer: new FrameWriter(ws, socket, batched), ws, frames, closed };
}

const sizes = (frames: string[]) => frames.map((f) => (JSON.parse(f) as unknown[]).length);

test('batched: one turn\'s messages go in order in frames of at most BATCH_MAX_BYTES of messages (in bytes); a larger message goes alone', async (t) => {
  const { writer, frames } = await pair(t, true);
  const ten = message(10 * 1024);
  const sent = [...Array<string>(10).fill(ten), message(100 * 1024), '{"a":1}', '{"b":2}', '{"c":3}'];
  for (const m of sent) writer.send(m);
  assert.equal(writer.buffered() >= 3 * 10 * 1024, true, 'the batch being gathered counts as buffered');
  await waitFor(() => frames.length === 4, 'four frames');
  // 6 x 10 KiB fit in 64 KiB, a 7th would not; the 100 KiB message alone; the rest of the turn.
  assert.deepEqual(sizes(frames), [6, 4, 1, 3]);
  assert.deepEqual(frames.flatMap((f) => (JSON.parse(f) as unknown[]).map((m) => JSON.stringify(m))), sent);
  assert.ok(6 * ten.length < BATCH_MAX_BYTES && 7 * ten.length >= BATCH_MAX_BYTES, 'the sizes above straddle the cut');

  // Sizes count bytes: two messages of 40 KiB of 2-byte characters (20 Ki characters) do not fit in one.
  const wide = message(40 * 1024, 'é');
  for (const m of [wide, wide, '{"d":4}']) writer.send(m);
  await waitFor(() => frames.length === 6, 'two more frames');
  assert.deepEqual(sizes(frames.slice(4)), [1, 2]);
  for (const f of frames) assert.ok(sizes([f])[0] === 1 || Buffer.byteLength(f) <= BATCH_MAX_BYTES + sizes([f])[0]! + 1, `a frame of ${f.length}`);
});

test('batched: flush() sends the turn\'s batch so far; close() puts the last batch ahead of the close frame', async (t) => {
  const { writer, ws, frames, closed } = await pair(t, true);
  writer.send('{"n":1}');
  writer.send('{"n":2}');
  writer.flush();
  writer.send('{"n":3}');
  writer.close(1000, 'done');
  assert.equal(await withTimeout(closed, 'the close'), 1000);
  assert.deepEqual(frames, ['[{"n":1},{"n":2}]', '[{"n":3}]']);
  writer.send('{"n":4}');
  assert.equal(writer.buffered(), ws.bufferedAmount, 'nothing is gathered once the socket is not open');
});

test('without batches every message is a frame of its own, not an array', async (t) => {
  const { writer, frames } = await pair(t, false);
  const sent = ['{"a":1}', message(100 * 1024), '{"b":2}'];
  for (const m of sent) writer.send(m);
  writer.flush();
  await waitFor(() => frames.length === 3, 'three frames');
  assert.deepEqual(frames, sent);
});
