import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutputLines } from '../../src/web/output-lines.js';
import type { Json, TaskEvent } from '../../src/wire/events.js';
import { TaskOutput } from '../../src/wire/output.js';

type Step = Pick<TaskEvent, 'type' | 'status' | 'chunk'>;
const out = (chunk: Json): Step => ({ type: 'output', status: 'PROCESSING', chunk });
const stage = (status: string): Step => ({ type: 'stage', status });
const restart: Step = { type: 'restart', status: 'PROCESSING' };

/** Feeds `steps` through the rule into OutputLines; returns the lines and the rule's text. */
function feed(steps: Step[], lines = new OutputLines(), output = new TaskOutput()): { lines: OutputLines; text: string } {
  for (const step of steps) {
    const change = output.apply(step);
    if (change) lines.apply(change);
  }
  return { lines, text: output.text };
}

const all = (lines: OutputLines) => Array.from({ length: lines.count }, (_, i) => lines.line(i));
/** The rule's text as lines: a final newline ends the last line. */
const split = (text: string) => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

test('lines follow the rule\'s text: words joined into lines, records one JSON line each', () => {
  const { lines, text } = feed([stage('STARTED'), out('a '), out('b\nc'), out({ n: 1 }), out('d\n'), out([2]), stage('DONE')]);
  assert.deepEqual(all(lines), split(text));
  assert.deepEqual(all(lines), ['a b', 'c{"n":1}', 'd', '[2]']);
  assert.equal(lines.tentativeFrom, lines.count, 'a stage commits everything');
});

test('a discard removes the tentative text, also the tail of a line whose start is committed', () => {
  const { lines, text } = feed([out('one\ntw'), stage('S1'), out('o\nthree\n'), out('four'), restart, out('O!\n')]);
  assert.deepEqual(all(lines), split(text));
  assert.deepEqual(all(lines), ['one', 'twO!']);
  assert.equal(lines.tentativeFrom, 1, 'the line mixing committed and tentative text counts as tentative');
});

test('RETRYING discards, a later stage commits; the dirty line is the first that changed', () => {
  const lines = new OutputLines();
  const output = new TaskOutput();
  feed([out('x\n'), stage('S1'), out('y\n'), out('z')], lines, output);
  assert.equal(lines.takeDirty(), 0);
  assert.equal(lines.takeDirty(), Infinity, 'nothing changed since');
  assert.equal(lines.tentativeFrom, 1);
  feed([stage('RETRYING')], lines, output);
  assert.equal(lines.takeDirty(), 1);
  assert.deepEqual(all(lines), ['x']);
  feed([out('y2\n'), stage('S1')], lines, output);
  assert.deepEqual(all(lines), ['x', 'y2']);
  assert.equal(lines.tentativeFrom, 2);
  assert.deepEqual(all(lines), split(output.text));
});

test('an empty output has no lines; empty lines count', () => {
  assert.equal(new OutputLines().count, 0);
  const { lines } = feed([out('\n\na\n')]);
  assert.deepEqual(all(lines), ['', '', 'a']);
});
