import type { Json } from '../wire/events.js';
import type { OutputChange } from '../wire/output.js';
import { counted, el } from './dom.js';
import { OutputLines } from './output-lines.js';

/** The most output lines in the DOM: a longer output shows its last lines (and links the whole). */
export const MAX_SHOWN_LINES = 1000;

/** Within this many pixels of the end, the box counts as scrolled to the end and follows it. */
const END_SLACK_PX = 4;

/**
 * A card's output: the last MAX_SHOWN_LINES lines in a scrolling box, a count of the lines not
 * shown, a link to download the whole output (GET /tasks/<id>/output), and the task's result as
 * indented JSON. `apply` only records a change; `render` (once per animation frame) redraws the
 * lines that changed, so its cost follows what arrived, not the length of the output. The box
 * follows the end while the user is there; scrolled up, what the user sees stays in place until
 * it falls out of the last MAX_SHOWN_LINES lines. Tentative lines (a restart would remove them)
 * carry the class `tentative`.
 */
export class OutputView {
  readonly root: HTMLElement;
  private readonly lines = new OutputLines();
  private readonly box: HTMLElement;
  private readonly body: HTMLElement;
  private readonly count: HTMLElement;
  private readonly more: HTMLElement;
  private readonly moreCount: HTMLElement;
  private readonly result: HTMLElement;
  /** Index of the line drawn by body's first child. */
  private first = 0;
  private shownTentativeFrom = 0;
  private following = true;
  /** The scrollTop this view set last: a scroll event that leaves it there is not the user's. */
  private setTop = 0;

  constructor(taskId: string) {
    const url = `/tasks/${encodeURIComponent(taskId)}/output`;
    const file = `task-${taskId}-output.txt`;
    this.count = el('span', { class: 'output-count' }, ['0 lines']);
    this.moreCount = el('span', {}, []);
    this.more = el('p', { class: 'output-more', hidden: true }, [
      this.moreCount, ' ', el('a', { href: url, target: '_blank', rel: 'noopener' }, ['Open the whole output']),
    ]);
    this.body = el('div', { class: 'output-lines' });
    this.box = el('div', { class: 'output', tabindex: 0, role: 'log', 'aria-label': `Output of task ${taskId}` }, [this.body]);
    this.result = el('pre', { class: 'result', hidden: true });
    this.root = el('section', { class: 'output-part', hidden: true }, [
      el('div', { class: 'output-head' }, [
        el('span', { class: 'output-title' }, ['Output']), ' ', this.count, ' ',
        el('a', { class: 'download', href: url, download: file }, ['Download output']),
      ]),
      this.more,
      this.box,
      this.result,
    ]);
    this.box.addEventListener('scroll', () => {
      this.following = this.atEnd() || (this.following && this.box.scrollTop === this.setTop);
    }, { passive: true });
  }

  apply(change: OutputChange): void {
    this.lines.apply(change);
  }

  /** Shows the task's result below the output. */
  showResult(result: Json): void {
    this.result.textContent = `Result:\n${JSON.stringify(result, null, 2)}`;
    this.result.hidden = false;
    this.root.hidden = false;
  }

  /** Redraws what changed since the last call. */
  render(): void {
    const dirty = this.lines.takeDirty();
    const tentativeFrom = this.lines.tentativeFrom;
    if (dirty === Infinity && tentativeFrom === this.shownTentativeFrom) return;
    const total = this.lines.count;
    const start = Math.max(0, total - MAX_SHOWN_LINES);
    const anchor = this.following ? undefined : this.topLine();
    const anchorTop = anchor?.getBoundingClientRect().top ?? 0;

    let end = this.first + this.body.childElementCount;
    while (end > Math.max(this.first, Math.min(dirty, total))) {
      this.body.lastChild!.remove();
      end--;
    }
    if (start >= end || start < this.first) {
      this.body.replaceChildren();
      end = start;
    } else {
      for (let i = this.first; i < start; i++) this.body.firstChild!.remove();
    }
    this.first = start;
    if (tentativeFrom !== this.shownTentativeFrom) {
      for (let i = Math.max(Math.min(this.shownTentativeFrom, tentativeFrom), start); i < end; i++) {
        (this.body.children[i - start] as HTMLElement).classList.toggle('tentative', i >= tentativeFrom);
      }
    }
    const added = document.createDocumentFragment();
    for (let i = end; i < total; i++) {
      added.append(el('div', { class: i >= tentativeFrom ? 'line tentative' : 'line' }, [this.lines.line(i)]));
    }
    this.body.append(added);
    this.shownTentativeFrom = tentativeFrom;

    this.count.textContent = counted(total, 'line');
    this.moreCount.textContent = `${counted(start, 'earlier line')} not shown.`;
    this.more.hidden = start === 0;
    if (total > 0) this.root.hidden = false;
    if (this.following) this.box.scrollTop = this.box.scrollHeight;
    else if (anchor?.isConnected) this.box.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
    this.setTop = this.box.scrollTop;
  }

  private atEnd(): boolean {
    return this.box.scrollHeight - this.box.scrollTop - this.box.clientHeight <= END_SLACK_PX;
  }

  /** The first line at least partly in view (the box is their offsetParent). */
  private topLine(): HTMLElement | undefined {
    const nodes = this.body.children;
    const top = this.box.scrollTop;
    let lo = 0;
    let hi = nodes.length - 1;
    if (hi < 0) return undefined;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const node = nodes[mid] as HTMLElement;
      if (node.offsetTop + node.offsetHeight <= top) lo = mid + 1;
      else hi = mid;
    }
    return nodes[lo] as HTMLElement;
  }
}
