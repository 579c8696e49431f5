import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveScreen } from '../../src/cli/live-screen.js';
import { renderTerminal } from '../helpers/terminal.js';

const COLUMNS = 20;

/** A terminal's bytes: the tty turns each LF into CR LF (onlcr), as a real one does. */
function terminal() {
  let bytes = '';
  return {
    columns: COLUMNS,
    write: (text: string) => void (bytes += text.replaceAll('\n', '\r\n')),
    screen: () => renderTerminal(bytes, COLUMNS),
  };
}

/** Deterministic [0, 1) numbers. */
function random(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

const PIECES = ['word ', 'x'.repeat(COLUMNS), 'y'.repeat(COLUMNS - 1), 'z'.repeat(COLUMNS + 1), '\n', 'a\tb', 'long line '.repeat(5), ''];

test('text above the status line reads as the text alone would, whatever its chunks and line widths', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(seed);
    const out = terminal();
    const plain = terminal();
    const screen = new LiveScreen(out);
    let text = '';
    let status = '';
    for (let step = 0; step < 30; step++) {
      const roll = next();
      if (roll < 0.15) {
        status = `[bar ${step}] ${'m'.repeat(Math.floor(next() * COLUMNS * 1.5))}`;
        screen.setStatus(status);
      } else if (roll < 0.2) {
        const line = `[notice ${step}]`;
        const stream = { write: (t: string) => out.write(t) };
        screen.notice(line, stream);
        if (text !== '' && !text.endsWith('\n')) text += '\n';
        text += `${line}\n`;
      } else {
        const piece = PIECES[Math.floor(next() * PIECES.length)]!;
        screen.text(piece);
        text += piece;
      }
    }
    const cut = status.length > COLUMNS - 1 ? `${status.slice(0, COLUMNS - 2)}…` : status;
    const before = out.screen();
    plain.write(`${text}${text !== '' && !text.endsWith('\n') && status !== '' ? '\n' : ''}${cut}`);
    assert.deepEqual(before, plain.screen(), `seed ${seed}, while live`);
    screen.end();
    assert.equal(out.screen().at(-1), '', `seed ${seed}: the screen ends on a fresh line`);
  }
});
