import { CloseCode } from '../wire/close-codes.js';
import { SubscriptionCode } from '../wire/mux.js';
import type { ApiClient } from '../client/api-client.js';
import type { WatchState } from '../client/task-watcher.js';
import type { TaskWatch } from '../client/task-watch.js';
import type { TaskWatchers } from '../client/task-watchers.js';
import type { Json, TaskEvent } from '../wire/events.js';
import { el, showError } from './dom.js';
import { EventLog, eventLineParts } from './event-log.js';
import { OutputView } from './output-view.js';

/**
 * One watched task: progress bar with the latest progress message, status badge, id with a copy
 * button, connection state, cancel button, a log with one line per stage, progress and restart
 * event, and the task's output and result (OutputView). The watcher guarantees each event once,
 * in order, so the log and the output never repeat or skip anything, across reconnects too.
 * Events only update the card's state; the DOM is written once per animation frame. Every card
 * watches over the page's one multiplexed connection (`watchers`).
 */
export class TaskCard {
  readonly root: HTMLElement;
  private readonly bar: HTMLProgressElement;
  private readonly percent: HTMLElement;
  private readonly message: HTMLElement;
  private readonly badge: HTMLElement;
  private readonly conn: HTMLElement;
  private readonly error: HTMLElement;
  private readonly cancelButton: HTMLButtonElement;
  private readonly copyButton: HTMLButtonElement;
  private readonly heading: HTMLElement;
  private readonly log: EventLog;
  private readonly output: OutputView;
  private watch: TaskWatch | undefined;
  private countdown: ReturnType<typeof setInterval> | undefined;
  private wasLive = false;
  private frame: number | undefined;
  /** What the next frame shows; undefined: unchanged. */
  private next: { status?: string; progress?: number; message?: string; result?: Json } = {};

  /**
   * `watchers`: the page's one multiplexed connection. `token`: what its subscription shows when
   * the gateway has auth on (an API token or this task's watch token; sent in the subscribe
   * message, never in a URL). `readOnly`:
   * the page holds only this task's watch token, so the card offers no cancel. `onLive`: the
   * gateway answered (a watch is live); `onUnauthorized`: the watch was refused its token (4401).
   */
  constructor(
    readonly taskId: string,
    private readonly api: ApiClient,
    private readonly watchers: TaskWatchers,
    private readonly hooks: { onFinished(): void; onDismiss(card: TaskCard): void; onLive(): void; onUnauthorized(): void },
    private readonly options: { token: string | undefined; readOnly: boolean },
  ) {
    const headingId = `card-${taskId}-h`;
    this.heading = el('h3', { id: headingId, tabindex: -1 }, ['Task ', el('code', { class: 'task-id' }, [taskId])]);
    this.copyButton = el('button', { type: 'button', class: 'copy', 'aria-label': `Copy task id ${taskId}` }, ['Copy id']);
    this.badge = el('span', { class: 'badge', 'data-status': 'PENDING' }, ['…']);
    this.bar = el('progress', { max: 100, value: 0, 'aria-label': `Progress of task ${taskId}` }, ['0%']);
    this.percent = el('span', { class: 'percent', 'aria-hidden': 'true' }, ['0%']);
    this.message = el('span', { class: 'message' });
    this.conn = el('p', { class: 'conn', role: 'status', 'data-state': 'connecting' }, ['Connecting…']);
    this.error = el('p', { class: 'error', role: 'alert', hidden: true });
    this.cancelButton = el('button', { type: 'button', class: 'cancel', hidden: this.options.readOnly }, ['Cancel task']);
    const dismiss = el('button', { type: 'button', class: 'dismiss', 'aria-label': `Stop watching task ${taskId}` }, ['Close']);
    this.log = new EventLog(taskId);
    this.output = new OutputView(taskId);
    this.root = el('article', { class: 'card', 'data-task-id': taskId, 'aria-labelledby': headingId }, [
      el('header', { class: 'card-head' }, [this.heading, this.badge, this.copyButton]),
      el('div', { class: 'bar' }, [this.bar, this.percent, this.message]),
      this.conn,
      this.error,
      el('div', { class: 'actions' }, [this.cancelButton, dismiss]),
      this.log.root,
      this.output.root,
    ]);

    this.copyButton.addEventListener('click', () => void this.copyId());
    this.cancelButton.addEventListener('click', () => void this.cancel());
    dismiss.addEventListener('click', () => {
      void this.close();
      hooks.onDismiss(this);
    });
  }

  start(): void {
    this.watch ??= this.watchers.watch(this.taskId, {
      token: this.options.token,
      onEvent: (event) => this.onEvent(event),
      onOutput: (change) => {
        this.output.apply(change);
        this.schedule();
      },
      onState: (state) => this.onState(state),
    });
  }

  focus(): void {
    this.root.scrollIntoView({ block: 'nearest' });
    this.heading.focus();
  }

  async close(): Promise<void> {
    this.stopCountdown();
    if (this.frame !== undefined) cancelAnimationFrame(this.frame);
    this.frame = undefined;
    await this.watch?.close();
  }

  /** Output events change only the output; the others, the bar, badge, message and log. */
  private onEvent(event: TaskEvent): void {
    if (event.result !== undefined) this.next.result = event.result;
    if (event.type === 'output') return;
    this.next.status = event.status;
    this.next.progress = event.progress;
    // As the task's hash: a progress event sets the message (none clears it), a stage event clears it.
    if (event.type === 'progress' || event.type === 'stage') this.next.message = event.message ?? '';
    this.log.add('event', event.ts, eventLineParts(event), event.id);
    this.schedule();
  }

  private schedule(): void {
    this.frame ??= requestAnimationFrame(() => this.render());
  }

  private render(): void {
    this.frame = undefined;
    const { status, progress, message, result } = this.next;
    this.next = {};
    if (progress !== undefined) this.setProgress(progress);
    if (status !== undefined) this.setBadge(status);
    if (message !== undefined) this.message.textContent = message;
    this.log.flush();
    this.output.render();
    if (result !== undefined) this.output.showResult(result);
  }

  private onState(state: WatchState): void {
    this.stopCountdown();
    this.conn.dataset.state = state.state;
    switch (state.state) {
      case 'connecting':
        this.conn.textContent = state.attempt === 0 ? 'Connecting…' : `Disconnected from ${this.taskId}. Reconnecting… (attempt ${state.attempt + 1})`;
        break;
      case 'live':
        if (this.wasLive) this.note('Reconnected; resuming after the last event shown.');
        this.wasLive = true;
        this.conn.textContent = 'Live';
        this.hooks.onLive();
        break;
      case 'reconnecting': {
        // 4429 ends only this card's subscription (too many on the connection): the connection is up.
        const busy = state.code === SubscriptionCode.TOO_MANY_SUBSCRIPTIONS;
        if (state.attempt === 1 && !busy) this.note('Disconnected. Reconnecting…');
        const tick = () => {
          const seconds = Math.max(0, Math.ceil((state.nextAttemptAt - Date.now()) / 1000));
          this.conn.textContent = busy
            ? `The gateway is busy (${state.reason}). Next attempt in ${seconds} s`
            : `Disconnected from ${this.taskId}. Reconnecting… next attempt in ${seconds} s`;
        };
        tick();
        this.countdown = setInterval(tick, 250);
        break;
      }
      case 'finished':
        this.conn.textContent = 'Finished';
        this.cancelButton.hidden = true;
        if (state.status === null) void this.loadFinalStatus();
        this.hooks.onFinished();
        break;
      case 'failed':
        this.conn.textContent = 'Stopped';
        this.cancelButton.hidden = true;
        this.next.status = 'ERROR';
        this.setBadge('ERROR');
        showError(this.error, this.describeFailure(state.code, state.reason));
        if (state.code === CloseCode.UNAUTHORIZED) this.hooks.onUnauthorized();
        break;
      case 'closed':
        this.conn.textContent = 'Not watching';
        break;
    }
  }

  private describeFailure(code: number, reason: string): string {
    if (code === CloseCode.NOT_FOUND) return `Task ${this.taskId} was not found: it never existed or has expired.`;
    if (code === CloseCode.BAD_REQUEST) return `Cannot watch ${this.taskId}: ${reason || 'bad request'}.`;
    if (code === CloseCode.UNAUTHORIZED) return `Not allowed to watch ${this.taskId}: ${reason || 'the token was refused'}.`;
    return `Stopped watching ${this.taskId}: ${reason || `connection closed with code ${code}`}.`;
  }

  /** The watch joined after the last event (nothing to replay), so the status comes from the API. */
  private async loadFinalStatus(): Promise<void> {
    try {
      const state = await this.api.get(this.taskId);
      this.next = { ...this.next, status: state.status, progress: state.progress, message: state.message ?? '' };
      if (state.result !== undefined) this.next.result = state.result;
      this.schedule();
    } catch (err) {
      showError(this.error, `Could not load the task's state: ${(err as Error).message}`);
    }
  }

  private async cancel(): Promise<void> {
    this.cancelButton.disabled = true;
    showError(this.error, '');
    try {
      await this.api.cancel(this.taskId);
    } catch (err) {
      showError(this.error, `Could not cancel: ${(err as Error).message}`);
      this.cancelButton.disabled = false;
    }
  }

  private async copyId(): Promise<void> {
    try {
      await navigator.clipboard.writeText(this.taskId);
      this.copyButton.textContent = 'Copied';
    } catch {
      // No clipboard access (plain http, denied): select the id so the user can copy it by hand.
      const range = document.createRange();
      range.selectNodeContents(this.heading.querySelector('code')!);
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      this.copyButton.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => (this.copyButton.textContent = 'Copy id'), 2000);
  }

  private setBadge(status: string): void {
    this.badge.textContent = status;
    this.badge.dataset.status = status;
  }

  private setProgress(progress: number): void {
    this.bar.value = progress;
    this.bar.textContent = `${progress}%`;
    this.percent.textContent = `${progress}%`;
  }

  private note(text: string): void {
    this.log.add('note', Date.now(), [text]);
    this.schedule();
  }

  private stopCountdown(): void {
    if (this.countdown !== undefined) clearInterval(this.countdown);
    this.countdown = undefined;
  }
}
