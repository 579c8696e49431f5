import type { TaskEvent } from '../wire/events.js';
import { clock, counted, el } from './dom.js';

/** The most lines the log keeps in the DOM; earlier ones are counted above it. */
export const MAX_LOG_LINES = 500;

interface Entry {
  kind: 'event' | 'note';
  ts: number;
  parts: (string | Node)[];
  eventId?: string | undefined;
}

/**
 * The text the log shows for one event: `Status: <status>, Progress: <n>%`, then the message of a
 * progress event or a restart's mark. The task id is in the card's heading, not on every line.
 */
export function eventLineParts(event: TaskEvent): (string | Node)[] {
  const parts: (string | Node)[] = [`Status: ${event.status}, Progress: ${event.progress}%`];
  if (event.type === 'progress' && event.message !== undefined) parts.push(`, Message: ${event.message}`);
  if (event.type === 'restart') parts.push(' (a new run took over: the output since the last stage is void)');
  return parts;
}

/** Within this many pixels of the end, the log counts as scrolled to the end. */
const END_SLACK_PX = 4;

/**
 * A card's log: one timestamped line per stage, progress and restart event, and notes about the
 * connection, in the order they were added. `add` queues; `flush` (once per animation frame)
 * writes them, keeping the last MAX_LOG_LINES lines in the DOM. The log follows its end until the
 * user scrolls up, and again once they scroll back down: following is the user's choice, kept
 * across re-layouts (a narrower card wraps more lines, a scroll bar appears), which re-pin the end
 * (the style sheet turns scroll anchoring off for the log: it would hold a middle line in place).
 */
export class EventLog {
  readonly root: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly more: HTMLElement;
  private queued: Entry[] = [];
  private dropped = 0;
  private following = true;
  /** The scrollTop this log set last: a scroll event that leaves it there is not the user's. */
  private setTop = 0;

  constructor(taskId: string) {
    this.list = el('ol', { class: 'log', 'aria-label': `Event log of task ${taskId}` });
    this.more = el('p', { class: 'log-more', hidden: true });
    this.root = el('div', { class: 'log-part' }, [this.more, this.list]);
    this.list.addEventListener('scroll', () => {
      this.following = this.atEnd() || (this.following && this.list.scrollTop === this.setTop);
    }, { passive: true });
    new ResizeObserver(() => this.follow()).observe(this.list);
  }

  add(kind: Entry['kind'], ts: number, parts: (string | Node)[], eventId?: string): void {
    this.queued.push({ kind, ts, parts, eventId });
    if (this.queued.length > MAX_LOG_LINES) {
      this.dropped += this.queued.length - MAX_LOG_LINES;
      this.queued = this.queued.slice(-MAX_LOG_LINES);
    }
  }

  flush(): void {
    if (this.queued.length === 0) return;
    this.list.append(...this.queued.map((e) => this.line(e)));
    this.queued = [];
    let extra = this.list.childElementCount - MAX_LOG_LINES;
    this.dropped += Math.max(0, extra);
    for (; extra > 0; extra--) this.list.firstChild!.remove();
    this.more.textContent = `${counted(this.dropped, 'earlier line')} not shown.`;
    this.more.hidden = this.dropped === 0;
    this.list.start = this.dropped + 1;
    this.follow();
  }

  private atEnd(): boolean {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight <= END_SLACK_PX;
  }

  private follow(): void {
    if (!this.following) return;
    this.list.scrollTop = this.list.scrollHeight;
    this.setTop = this.list.scrollTop;
  }

  private line(entry: Entry): HTMLLIElement {
    const time = el('time', { datetime: new Date(entry.ts).toISOString() }, [clock(entry.ts)]);
    return el('li', { class: entry.kind, 'data-event-id': entry.eventId }, [time, ' ', ...entry.parts]);
  }
}
