import { ApiError, type ApiClient } from '../client/api-client.js';
import type { FeedFollow } from '../client/feed-follow.js';
import type { TaskWatchers } from '../client/task-watchers.js';
import type { FeedEntry } from '../wire/feed.js';
import { clock, el, showError } from './dom.js';

const PAGE_SIZE = 10;
/** Feed entries remembered per task for a list that loads after them; the oldest are forgotten. */
const LATEST_MAX = 1000;

/** What an item shows of a task. */
interface Row {
  task_id: string;
  status: string;
  progress: number;
  created_at: number;
  /** The time of the change the row shows, epoch ms: an older feed entry changes nothing. */
  updated_at: number;
}

/**
 * Recent tasks from GET /tasks, newest first, a page at a time ("Load more" follows the cursor),
 * kept live by the feed of all tasks (follow()): statuses and progress move, new tasks appear at
 * the top, and the feed resumes from its cursor after a disconnect; when the gateway says entries
 * were missed (4410), the list reloads. Choosing a task observes it.
 */
export class TaskList {
  private cursor: string | null = null;
  private readonly items = new Map<string, { row: Row; li: HTMLLIElement }>();
  private readonly latest = new Map<string, FeedEntry>();
  private feed: FeedFollow | undefined;

  constructor(
    private readonly api: ApiClient,
    private readonly parts: { list: HTMLUListElement; more: HTMLButtonElement; error: HTMLElement; empty: HTMLElement },
    private readonly hooks: {
      onChoose(taskId: string): void;
      /** A page arrived: the gateway is reachable and the token (if any) accepted. */
      onLoaded(): void;
      /** The gateway refused the request (401): auth is on and the page has no valid API token. */
      onUnauthorized(err: ApiError): void;
    },
  ) {
    parts.more.addEventListener('click', () => void this.load(false));
  }

  /**
   * Follows the feed of all tasks over `watchers`' connection (the page's one socket), with `token`
   * (auth on: an API token) in its subscribe messages; calling it again while following has no effect.
   */
  follow(watchers: TaskWatchers, token: string | undefined): void {
    if (this.feed) return;
    this.feed = watchers.follow({ token, onEntry: (entry) => this.apply(entry), onReset: () => void this.refresh() });
  }

  /** Stops following the feed and empties the list (on sign-out). */
  clear(): void {
    void this.feed?.close();
    this.feed = undefined;
    this.parts.list.replaceChildren();
    this.items.clear();
    this.latest.clear();
    this.cursor = null;
    this.parts.more.hidden = true;
    this.parts.empty.hidden = true;
    showError(this.parts.error, '');
  }

  /** Reloads from the newest task. */
  refresh(): Promise<void> {
    return this.load(true);
  }

  private async load(fromTop: boolean): Promise<void> {
    const { list, more, error } = this.parts;
    more.disabled = true;
    try {
      const page = await this.api.list({ limit: PAGE_SIZE, cursor: fromTop ? null : this.cursor });
      if (fromTop) {
        list.replaceChildren();
        this.items.clear();
      }
      for (const task of page.tasks) {
        if (this.items.has(task.task_id)) continue;
        const row: Row = { ...task };
        const seen = this.latest.get(task.task_id);
        if (seen && seen.ts >= row.updated_at) Object.assign(row, { status: seen.status, progress: seen.progress, updated_at: seen.ts });
        const li = el('li', {}, [this.button(row)]);
        this.items.set(task.task_id, { row, li });
        list.append(li);
      }
      this.cursor = page.next_cursor;
      showError(error, '');
      this.parts.empty.hidden = list.childElementCount > 0;
      this.hooks.onLoaded();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.hooks.onUnauthorized(err);
      else showError(error, `Could not load recent tasks: ${(err as Error).message}`);
    }
    more.hidden = this.cursor === null;
    more.disabled = false;
  }

  /** A feed entry: moves its task's item, or puts a new task at the top. */
  private apply(entry: FeedEntry): void {
    this.latest.delete(entry.task_id);
    this.latest.set(entry.task_id, entry);
    if (this.latest.size > LATEST_MAX) this.latest.delete(this.latest.keys().next().value!);
    const shown = this.items.get(entry.task_id);
    if (shown) {
      if (entry.ts < shown.row.updated_at) return;
      Object.assign(shown.row, { status: entry.status, progress: entry.progress, updated_at: entry.ts });
      shown.li.replaceChildren(this.button(shown.row));
      return;
    }
    if (entry.status !== 'PENDING') return;
    const row: Row = { task_id: entry.task_id, status: entry.status, progress: entry.progress, created_at: entry.ts, updated_at: entry.ts };
    const li = el('li', {}, [this.button(row)]);
    this.items.set(entry.task_id, { row, li });
    this.parts.list.prepend(li);
    this.parts.empty.hidden = true;
  }

  private button(row: Row): HTMLButtonElement {
    const button = el('button', { type: 'button', class: 'task-link', 'data-task-id': row.task_id }, [
      el('code', {}, [row.task_id]),
      ' ',
      el('span', { class: 'badge', 'data-status': row.status }, [row.status]),
      ` ${row.progress}% · started ${clock(row.created_at)}`,
    ]);
    button.addEventListener('click', () => this.hooks.onChoose(row.task_id));
    return button;
  }
}
