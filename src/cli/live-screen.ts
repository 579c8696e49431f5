/** A terminal stream: what the live screen writes to and measures. */
export interface TerminalOut {
  write(text: string): unknown;
  /** Width in character cells (a TTY's `columns`); 80 when unknown. */
  columns?: number | undefined;
}

const CLEAR_LINE = '\r\x1b[2K';
const UP = '\x1b[1A';
const TAB = 8;

/**
 * A terminal whose last line shows a status (the progress bar) while text scrolls above it.
 * Text may end without a newline: its unfinished line stays where it is, the status goes on the
 * line below, and the next text continues that line. Widths are counted one cell per character
 * (a tab to the next stop of its row), so wide characters can misplace the cursor; the status is cut
 * to the width so it never wraps.
 */
export class LiveScreen {
  private status = '';
  private shown = false;
  /** Cells on the text's last line, since its last newline or carriage return. */
  private lineWidth = 0;
  /** The last character printed on that line: rewritten to put the cursor back at a full row's end. */
  private lastChar = '';

  constructor(private readonly out: TerminalOut) {}

  /** Writes text above the status line, continuing the text's unfinished line. */
  text(text: string): void {
    if (text === '') return;
    this.hide();
    this.out.write(text);
    this.measure(text);
    this.show();
  }

  /**
   * Writes `line` to `stream` (which shows on the same terminal, e.g. stderr) on a line of its
   * own above the status; an unfinished text line is ended first.
   */
  notice(line: string, stream: { write(text: string): unknown }): void {
    this.hide();
    this.endLine();
    stream.write(`${line}\n`);
    this.show();
  }

  /** Replaces the status line. */
  setStatus(status: string): void {
    this.hide();
    this.status = status;
    this.show();
  }

  /** Leaves the status (if any) as a finished line under the text; the screen is not used after. */
  end(): void {
    if (this.shown) this.out.write('\n');
    else this.endLine();
    this.shown = false;
    this.lineWidth = 0;
    this.status = '';
  }

  private get columns(): number {
    return this.out.columns && this.out.columns > 0 ? this.out.columns : 80;
  }

  private cut(status: string): string {
    const max = this.columns - 1;
    return status.length > max ? `${status.slice(0, Math.max(0, max - 1))}…` : status;
  }

  /** Draws the status: on the cursor's line after finished text, on the line below an unfinished one. */
  private show(): void {
    if (this.status === '') return;
    this.out.write(`${this.lineWidth > 0 ? '\n' : ''}${this.cut(this.status)}`);
    this.shown = true;
  }

  /** Erases the status and puts the cursor back where the text ends. */
  private hide(): void {
    if (!this.shown) return;
    this.shown = false;
    if (this.lineWidth === 0) {
      this.out.write(CLEAR_LINE);
      return;
    }
    const column = this.lineWidth % this.columns;
    // At a full row's end the terminal waits to wrap until the next character: printing the last
    // one again there restores that state.
    this.out.write(`${CLEAR_LINE}${UP}${column > 0 ? `\x1b[${column + 1}G` : `\x1b[${this.columns}G${this.lastChar}`}`);
  }

  /** Puts the cursor at the start of a line of its own, after the text. */
  private endLine(): void {
    if (this.lineWidth > 0) this.out.write('\n');
    this.lineWidth = 0;
  }

  private measure(text: string): void {
    const lineBreak = Math.max(text.lastIndexOf('\n'), text.lastIndexOf('\r'));
    if (lineBreak >= 0) this.lineWidth = 0;
    for (const ch of text.slice(lineBreak + 1)) {
      if (ch === '\t') this.lineWidth += this.tabWidth();
      else if (ch >= ' ' && ch !== '\x7f') {
        this.lineWidth += 1;
        this.lastChar = ch;
      }
    }
  }

  /** A tab moves to the next stop of its row, at most to the last column; at a row's end it stays. */
  private tabWidth(): number {
    const column = this.lineWidth % this.columns;
    if (column === 0 && this.lineWidth > 0) return 0;
    return Math.min(this.columns - 1, (Math.floor(column / TAB) + 1) * TAB) - column;
  }
}
