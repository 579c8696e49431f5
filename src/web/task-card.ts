import type { ApiClient } from '../client/api-client.js';
import { TaskWatcher, type WatchState } from '../client/task-watcher.js';
import type { TaskEvent } from '../wire/events.js';
import { clock, el, showError } from './dom.js';

/** The line the log shows for one event (the reference page's wording). */
export function eventLine(event: TaskEvent): string {
  return `Task: ${event.task_id}, Status: ${event.status}, Progress: ${event.progress}%`;
}

/**
 * One watched task: progress bar, status badge, id with a copy button, connection state, cancel
 * button and an append-only log with one line per event. The watcher guarantees each event once,
 * in order, so the log never repeats or skips a stage, across reconnects too.
 */
export class TaskCard {
  readonly root: HTMLElement;
  private readonly bar: HTMLProgressElement;
  private readonly percent: HTMLElement;
  private readonly badge: HTMLElement;
  private readonly conn: HTMLElement;
  private readonly error: HTMLElement;
  private readonly cancelButton: HTMLButtonElement;
  private readonly copyButton: HTMLButtonElement;
  private readonly log: HTMLOListElement;
  private readonly heading: HTMLElement;
  private readonly watcher: TaskWatcher;
  private countdown: ReturnType<typeof setInterval> | undefined;
  private wasLive = false;

  constructor(
    readonly taskId: string,
    private readonly api: ApiClient,
    private readonly hooks: { onFinished(): void; onDismiss(card: TaskCard): void },
  ) {
    const headingId = `card-${taskId}-h`;
    this.heading = el('h3', { id: headingId, tabindex: -1 }, ['Task ', el('code', { class: 'task-id' }, [taskId])]);
    this.copyButton = el('button', { type: 'button', class: 'copy', 'aria-label': `Copy task id ${taskId}` }, ['Copy id']);
    this.badge = el('span', { class: 'badge', 'data-status': 'PENDING' }, ['…']);
    this.bar = el('progress', { max: 100, value: 0, 'aria-label': `Progress of task ${taskId}` }, ['0%']);
    this.percent = el('span', { class: 'percent', 'aria-hidden': 'true' }, ['0%']);
    this.conn = el('p', { class: 'conn', role: 'status', 'data-state': 'connecting' }, ['Connecting…']);
    this.error = el('p', { class: 'error', role: 'alert', hidden: true });
    this.cancelButton = el('button', { type: 'button', class: 'cancel' }, ['Cancel task']);
    const dismiss = el('button', { type: 'button', class: 'dismiss', 'aria-label': `Stop watching task ${taskId}` }, ['Close']);
    this.log = el('ol', { class: 'log', 'aria-label': `Event log of task ${taskId}` });
    this.root = el('article', { class: 'card', 'data-task-id': taskId, 'aria-labelledby': headingId }, [
      el('header', { class: 'card-head' }, [this.heading, this.badge, this.copyButton]),
      el('div', { class: 'bar' }, [this.bar, this.percent]),
      this.conn,
      this.error,
      el('div', { class: 'actions' }, [this.cancelButton, dismiss]),
      this.log,
    ]);

    this.copyButton.addEventListener('click', () => void this.copyId());
    this.cancelButton.addEventListener('click', () => void this.cancel());
    dismiss.addEventListener('click', () => {
      void this.close();
      hooks.onDismiss(this);
    });
    this.watcher = new TaskWatcher({
      baseUrl: location.origin,
      taskId,
      onEvent: (event) => this.onEvent(event),
      onState: (state) => this.onState(state),
    });
  }

  start(): void {
    void this.watcher.start();
  }

  focus(): void {
    this.root.scrollIntoView({ block: 'nearest' });
    this.heading.focus();
  }

  async close(): Promise<void> {
    this.stopCountdown();
    await this.watcher.close();
  }

  private onEvent(event: TaskEvent): void {
    this.bar.value = event.progress;
    this.bar.textContent = `${event.progress}%`;
    this.percent.textContent = `${event.progress}%`;
    this.setBadge(event.status);
    this.append('event', event.ts, eventLine(event), event.id);
  }

  private onState(state: WatchState): void {
    this.stopCountdown();
    this.conn.dataset.state = state.state;
    switch (state.state) {
      case 'connecting':
        this.conn.textContent = state.attempt === 0 ? 'Connecting…' : `Disconnected from ${this.taskId}. Reconnecting… (attempt ${state.attempt + 1})`;
        break;
      case 'live':
        if (this.wasLive) this.append('note', Date.now(), 'Reconnected; resuming after the last event shown.');
        this.wasLive = true;
        this.conn.textContent = 'Live';
        break;
      case 'reconnecting': {
        if (state.attempt === 1) this.append('note', Date.now(), `Disconnected from ${this.taskId}. Reconnecting…`);
        const tick = () => {
          const seconds = Math.max(0, Math.ceil((state.nextAttemptAt - Date.now()) / 1000));
          this.conn.textContent = `Disconnected from ${this.taskId}. Reconnecting… next attempt in ${seconds} s`;
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
        this.setBadge('ERROR');
        showError(this.error, this.describeFailure(state.code, state.reason));
        break;
      case 'closed':
        this.conn.textContent = 'Not watching';
        break;
    }
  }

  private describeFailure(code: number, reason: string): string {
    if (code === 4404) return `Task ${this.taskId} was not found: it never existed or has expired.`;
    if (code === 4400) return `Cannot watch ${this.taskId}: ${reason || 'bad request'}.`;
    return `Stopped watching ${this.taskId}: ${reason || `connection closed with code ${code}`}.`;
  }

  /** The watch joined after the last event (nothing to replay), so the status comes from the API. */
  private async loadFinalStatus(): Promise<void> {
    try {
      const state = await this.api.get(this.taskId);
      this.setBadge(state.status);
      this.bar.value = state.progress;
      this.percent.textContent = `${state.progress}%`;
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

  private append(kind: 'event' | 'note', ts: number, text: string, eventId?: string): void {
    const time = el('time', { datetime: new Date(ts).toISOString() }, [clock(ts)]);
    this.log.append(el('li', { class: kind, 'data-event-id': eventId }, [time, ' ', text]));
  }

  private stopCountdown(): void {
    if (this.countdown !== undefined) clearInterval(this.countdown);
    this.countdown = undefined;
  }
}
