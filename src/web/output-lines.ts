import type { OutputChange } from '../wire/output.js';
import { chunkText } from '../wire/output.js';

/**
 * A task's output as lines, kept up to date change by change (a watcher's `onOutput`, in order),
 * so a view can redraw only what changed. Its text is the rule's text (src/wire/output.ts,
 * GET /tasks/<id>/output): text chunks as they are, each record as one line of JSON. Line `i`
 * (0 <= i < count) has no newline; the last line is unfinished when the text does not end with
 * one. Lines from `tentativeFrom` on hold tentative text, which a `discard` removes.
 */
export class OutputLines {
  /** Every line; the last is the unfinished one, '' right after a newline. */
  private readonly lines: string[] = [''];
  /** The committed text ends in line `boundLine`, which then reads `boundText`. */
  private boundLine = 0;
  private boundText = '';
  private dirtyFrom = Infinity;

  apply(change: OutputChange): void {
    if (change.kind === 'append') this.append(chunkText(change.chunk));
    else if (change.kind === 'commit') this.commit();
    else this.discard();
  }

  /** Lines of text: a final newline ends the last line, it does not start another. */
  get count(): number {
    return this.lines.at(-1) === '' ? this.lines.length - 1 : this.lines.length;
  }

  line(i: number): string {
    return this.lines[i] ?? '';
  }

  /** The first line with tentative text in it, or `count` when there is none. */
  get tentativeFrom(): number {
    const tentative = this.lines.length - 1 > this.boundLine || this.lines[this.boundLine] !== this.boundText;
    return tentative ? this.boundLine : this.count;
  }

  /** The first line whose text changed (or that went away) since the last call; Infinity if none. */
  takeDirty(): number {
    const from = this.dirtyFrom;
    this.dirtyFrom = Infinity;
    return from;
  }

  private append(text: string): void {
    const parts = text.split('\n');
    const last = this.lines.length - 1;
    this.lines[last] += parts[0]!;
    for (let i = 1; i < parts.length; i++) this.lines.push(parts[i]!);
    if (text !== '') this.dirtyFrom = Math.min(this.dirtyFrom, last);
  }

  private commit(): void {
    this.boundLine = this.lines.length - 1;
    this.boundText = this.lines[this.boundLine]!;
  }

  private discard(): void {
    this.lines.length = this.boundLine + 1;
    this.lines[this.boundLine] = this.boundText;
    this.dirtyFrom = Math.min(this.dirtyFrom, this.boundLine);
  }
}
