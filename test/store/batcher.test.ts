import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher } from '../../src/store/batcher.js';
import { turns } from '../helpers/wait.js';

/** A sender whose batches stay pending until the test answers them. */
function controlledSender() {
  const batches: { items: number[]; answer(results: (string | Error)[]): void; fail(err: Error): void }[] = [];
  let arrived: (() => void) | undefined;
  const send = (items: number[]) =>
    new Promise<(string | Error)[]>((resolve, reject) => {
      batches.push({ items, answer: resolve, fail: reject });
      arrived?.();
    });
  const nextBatch = async () => {
    const count = batches.length;
    while (batches.length === count) await new Promise<void>((r) => (arrived = r));
    return batches.at(-1)!;
  };
  return { send, batches, nextBatch };
}

test('calls of one turn go in one batch, each gets its own result', async () => {
  const s = controlledSender();
  const b = new Batcher(s.send);
  const results = [1, 2, 3].map((i) => b.add(i));
  const batch = await s.nextBatch();
  assert.deepEqual(batch.items, [1, 2, 3]);
  batch.answer(['a', 'b', 'c']);
  assert.deepEqual(await Promise.all(results), ['a', 'b', 'c']);
});

test('calls made while a batch is in flight wait for it, then go together', async () => {
  const s = controlledSender();
  const b = new Batcher(s.send);
  const first = b.add(1);
  const batch1 = await s.nextBatch();
  const later = [b.add(2), b.add(3)];
  await turns(2);
  assert.equal(s.batches.length, 1, 'nothing sent while the first batch is in flight');
  const waiting = s.nextBatch();
  batch1.answer(['one']);
  assert.equal(await first, 'one');
  const batch2 = await waiting;
  assert.deepEqual(batch2.items, [2, 3]);
  batch2.answer(['two', 'three']);
  assert.deepEqual(await Promise.all(later), ['two', 'three']);
});

test('an Error result rejects its item alone; a failed send rejects its batch, and the next works', async () => {
  const s = controlledSender();
  const b = new Batcher(s.send);
  const [ok, bad] = [b.add(1), b.add(2)];
  (await s.nextBatch()).answer(['fine', new Error('item 2 failed')]);
  assert.equal(await ok, 'fine');
  await assert.rejects(bad, /item 2 failed/);

  const lost = [b.add(3), b.add(4)];
  (await s.nextBatch()).fail(new Error('connection closed'));
  for (const p of lost) await assert.rejects(p, /connection closed/);

  const again = b.add(5);
  (await s.nextBatch()).answer(['five']);
  assert.equal(await again, 'five');
});

test('a batch holds at most maxItems; the rest follow in order', async () => {
  const s = controlledSender();
  const b = new Batcher(s.send, 2);
  const all = [1, 2, 3, 4, 5].map((i) => b.add(i));
  const sizes: number[][] = [];
  for (let n = 0; n < 3; n++) {
    const batch = await s.nextBatch();
    sizes.push(batch.items);
    batch.answer(batch.items.map((i) => `r${i}`));
  }
  assert.deepEqual(sizes, [[1, 2], [3, 4], [5]]);
  assert.deepEqual(await Promise.all(all), ['r1', 'r2', 'r3', 'r4', 'r5']);
});

test('maxInFlight batches may await their answer at once; the next waits for one of them', async () => {
  const s = controlledSender();
  const b = new Batcher(s.send, 64, 2);
  const first = b.add(1);
  const batch1 = await s.nextBatch();
  const second = b.add(2);
  const batch2 = await s.nextBatch();
  assert.deepEqual([batch1.items, batch2.items], [[1], [2]]);
  const third = [b.add(3), b.add(4)];
  await turns(2);
  assert.equal(s.batches.length, 2, 'a third batch waits while two are in flight');
  const waiting = s.nextBatch();
  batch2.answer(['two']);
  const batch3 = await waiting;
  assert.deepEqual(batch3.items, [3, 4]);
  batch1.answer(['one']);
  batch3.answer(['three', 'four']);
  assert.deepEqual(await Promise.all([first, second, ...third]), ['one', 'two', 'three', 'four']);
});
