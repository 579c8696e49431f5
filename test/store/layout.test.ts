import assert from 'node:assert/strict';
import { test } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { v4 as uuidv4 } from 'uuid';
import { Batcher } from '../../src/store/batcher.js';
import { CLUSTER_LAYOUT, CLUSTER_PARTITIONS, SINGLE_LAYOUT, batchPerPartition, idIn } from '../../src/store/layout.js';
import { eventsKey, keyIn, taskKey } from '../../src/store/keys.js';

test('single node: one partition with the empty prefix, so key names are the README\'s', () => {
  const id = uuidv4();
  assert.equal(SINGLE_LAYOUT.partitions.length, 1);
  assert.equal(keyIn(SINGLE_LAYOUT.of(id), taskKey(id)), `task:${id}`);
  assert.equal(idIn(SINGLE_LAYOUT.partitions[0]!, 1, id), id);
});

test('cluster: each partition is one slot, in the i-th of 12 equal slot ranges, so 3 masters get 4 each', () => {
  assert.equal(CLUSTER_LAYOUT.partitions.length, CLUSTER_PARTITIONS);
  const perMaster = [0, 0, 0];
  for (const p of CLUSTER_LAYOUT.partitions) {
    const slot = calculateSlot(p.prefix);
    assert.ok(slot >= (p.index * 16384) / 12 && slot < ((p.index + 1) * 16384) / 12, `${p.prefix} at slot ${slot}`);
    perMaster[Math.floor((slot * 3) / 16384)]! += 1;
  }
  assert.deepEqual(perMaster, [4, 4, 4]);
});

test('cluster: every key of a task hashes to its partition\'s slot; ids moved into a partition stay UUIDs there', () => {
  for (let i = 0; i < 200; i++) {
    const id = uuidv4();
    const p = CLUSTER_LAYOUT.of(id);
    assert.equal(calculateSlot(keyIn(p, taskKey(id))), calculateSlot(keyIn(p, eventsKey(id))));
    assert.equal(calculateSlot(keyIn(p, taskKey(id))), calculateSlot(p.prefix));
    const target = CLUSTER_LAYOUT.partitions[i % CLUSTER_PARTITIONS]!;
    const moved = idIn(target, CLUSTER_PARTITIONS, id);
    assert.match(moved, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(CLUSTER_LAYOUT.of(moved), target);
    assert.equal(moved.slice(8), id.slice(8));
  }
  assert.equal(CLUSTER_LAYOUT.of('ffffffff-0000-4000-8000-000000000000'), CLUSTER_LAYOUT.partitions[0xffffffff % 12]);
  assert.equal(CLUSTER_LAYOUT.of(idIn(CLUSTER_LAYOUT.partitions[11]!, 12, 'ffffffff-0000-4000-8000-000000000000')).index, 11);
});

test('cluster: random ids spread over all partitions; a pin always picks the same one', () => {
  const counts = new Array<number>(CLUSTER_PARTITIONS).fill(0);
  for (let i = 0; i < 12_000; i++) counts[CLUSTER_LAYOUT.of(uuidv4()).index]! += 1;
  for (const c of counts) assert.ok(c > 800 && c < 1200, `share ${c} of 12000`);
  assert.equal(CLUSTER_LAYOUT.pinned('type:report'), CLUSTER_LAYOUT.pinned('type:report'));
});

test('batchPerPartition: each partition batches its own items; one whose calls never answer holds up only its own', async () => {
  const sent: [number, string[]][] = [];
  const add = batchPerPartition(
    CLUSTER_LAYOUT,
    (item: string) => CLUSTER_LAYOUT.partitions[Number(item.split(':')[0])]!,
    (p) => new Batcher((items: string[]) => {
      sent.push([p.index, items]);
      // Partition 1's master hangs: its call never answers.
      return p.index === 1 ? new Promise<string[]>(() => undefined) : Promise.resolve(items.map((i) => `ok ${i}`));
    }),
  );
  const hung = add('1:a');
  void hung.then(() => assert.fail('a call that never answers resolved'));
  assert.deepEqual(await Promise.all([add('0:b'), add('2:c'), add('0:d')]), ['ok 0:b', 'ok 2:c', 'ok 0:d']);
  // Later items of the healthy partitions go on, in batches of their own.
  assert.deepEqual(await add('2:e'), 'ok 2:e');
  assert.deepEqual(sent, [[1, ['1:a']], [0, ['0:b', '0:d']], [2, ['2:c']], [2, ['2:e']]]);
});
