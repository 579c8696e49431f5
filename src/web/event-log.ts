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
 * The text the log shows for one event: `Task: <id>, Status: <status>, Progress: <n>%` (the
 * reference page's wording), then the message of a progress event or a restart's mark. The id is
 * in a span that the style sheet shortens, so a wrapped line does not repeat it in full.
 */
export function eventLineParts(event: TaskEvent): (string | Node)[] {
  const parts: (string | Node)[] = ['Task: ', el('span', { class: 'log-id', title: event.task_id }, [event.task_id]),
    `, Status: ${event.status}, Progress: ${event.progress}%`];
  if (event.type === 'progress' && event.message !== undefined) parts.push(`, Message: ${event.message}`);
  if (event.type === 'restart') parts.push(' (a new run took over: the output since the last stage is void)');
  return parts;
}

/**
 * A card's log: one timestamped line per stage, progress and restart event, and notes about the
 * connection, in the order they were added. `add` queues; `flush` (once per animation frame)
 * writes them, keeping the last MAX_LOG_LINES lines in the DOM.
 */
export class EventLog {
  readonly root: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly more: HTMLElement;
  private queued: Entry[] = [];
  private dropped = 0;

  constructor(taskId: string) {
    this.list = el('ol', { class: 'log', 'aria-label': `Event log of task ${taskId}` });
    this.more = el('p', { class: 'log-more', hidden: true });
    this.root = el('div', { class: 'log-part' }, [this.more, this.list]);
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
    const follow = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight <= 4;
    this.list.append(...this.queued.map((e) => this.line(e)));
    this.queued = [];
    let extra = this.list.childElementCount - MAX_LOG_LINES;
    this.dropped += Math.max(0, extra);
    for (; extra > 0; extra--) this.list.firstChild!.remove();
    this.more.textContent = `${counted(this.dropped, 'earlier line')} not shown.`;
    this.more.hidden = this.dropped === 0;
    this.list.start = this.dropped + 1;
    if (follow) this.list.scrollTop = this.list.scrollHeight;
  }

  private line(entry: Entry): HTMLLIElement {
    const time = el('time', { datetime: new Date(entry.ts).toISOString() }, [clock(entry.ts)]);
    return el('li', { class: entry.kind, 'data-event-id': entry.eventId }, [time, ' ', ...entry.parts]);
  }
}
