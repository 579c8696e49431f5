import { ApiError, type ApiClient } from '../client/api-client.js';
import type { FeedFollow } from '../client/feed-follow.js';
import type { WatchState } from '../client/task-watcher.js';
import type { TaskWatchers } from '../client/task-watchers.js';
import type { FeedEntry } from '../wire/feed.js';
import type { TaskState } from '../wire/task-state.js';
import { clock, el, showError } from './dom.js';
import { matchesFilter, type ListFilter } from './list-filters.js';

const PAGE_SIZE = 10;
/** Feed entries remembered per task for a list that loads after them; the oldest are forgotten. */
const LATEST_MAX = 1000;

/** What an item shows of a task. */
interface Row {
  task_id: string;
  type: string;
  status: string;
  progress: number;
  tags?: string[] | undefined;
  /** A scheduled start's due time, epoch ms. */
  run_at?: number | undefined;
  created_at: number;
  /** The time of the change the row shows, epoch ms: an older feed entry changes nothing. */
  updated_at: number;
}

/**
 * Recent tasks from GET /tasks, newest first, a page at a time ("Load more" follows the cursor),
 * kept live by the feed of all tasks (follow()): statuses and progress move, new tasks appear at
 * the top, and the feed resumes from its cursor after a disconnect; when the gateway says entries
 * were missed (4410), the list reloads. Choosing a task observes it.
 *
 * With a filter (setFilter), pages come from GET /tasks with it and feed entries are applied
 * through it: a shown task whose status leaves the filter is removed from the list; a task whose
 * status enters it is fetched (GET /tasks/<id>) and put in its place by creation time (when that
 * place is within the pages loaded); a new task appears at the top only if it matches.
 */
export class TaskList {
  private cursor: string | null = null;
  private readonly items = new Map<string, { row: Row; li: HTMLLIElement }>();
  private readonly latest = new Map<string, FeedEntry>();
  private feed: FeedFollow | undefined;
  private filter: ListFilter = {};
  /** Bumped by each filter change and reload from the top: an answer to an older request is dropped. */
  private generation = 0;

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
  follow(watchers: TaskWatchers, token: string | undefined, onState?: (state: WatchState) => void): void {
    if (this.feed) return;
    this.feed = watchers.follow({ token, onEntry: (entry) => this.apply(entry), onReset: () => void this.refresh(), onState });
  }

  /**
   * The list from one tag's feed alone, for a page that holds only that tag's token (it cannot
   * list tasks): the whole retained feed, then live; after a reset the list starts empty again.
   */
  followTag(watchers: TaskWatchers, tag: string, token: string): void {
    if (this.feed) return;
    const reset = () => {
      this.parts.list.replaceChildren();
      this.items.clear();
      this.showEmpty();
    };
    this.showEmpty();
    this.feed = watchers.follow({ tag, token, lastEventId: '0', onEntry: (entry) => this.apply(entry), onReset: reset });
  }

  /** Stops following the feed and empties the list (on sign-out). */
  clear(): void {
    void this.feed?.close();
    this.feed = undefined;
    this.parts.list.replaceChildren();
    this.items.clear();
    this.latest.clear();
    this.generation++;
    this.cursor = null;
    this.parts.more.hidden = true;
    this.parts.empty.hidden = true;
    showError(this.parts.error, '');
  }

  /** Reloads from the newest task. */
  refresh(): Promise<void> {
    return this.load(true);
  }

  /** Shows only the tasks that match `filter` (reloads from the newest task); {} shows all. */
  setFilter(filter: ListFilter): Promise<void> {
    this.filter = { ...filter };
    return this.load(true);
  }

  private async load(fromTop: boolean): Promise<void> {
    const { list, more, error } = this.parts;
    more.disabled = true;
    const generation = fromTop ? ++this.generation : this.generation;
    try {
      const page = await this.api.list({ limit: PAGE_SIZE, cursor: fromTop ? null : this.cursor, filter: this.filter });
      if (generation !== this.generation) return;
      if (fromTop) {
        list.replaceChildren();
        this.items.clear();
      }
      for (const task of page.tasks) {
        const row = this.rowOf(task);
        if (row && !this.items.has(task.task_id)) list.append(this.show(row));
      }
      this.cursor = page.next_cursor;
      showError(error, '');
      this.showEmpty();
      this.hooks.onLoaded();
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof ApiError && err.status === 401) this.hooks.onUnauthorized(err);
      else showError(error, `Could not load recent tasks: ${(err as Error).message}`);
    }
    more.hidden = this.cursor === null;
    more.disabled = false;
  }

  /**
   * A feed entry: moves its task's item (or removes it when it leaves the filter), puts a new
   * matching task at the top, or fetches a task whose status entered the filter.
   */
  private apply(entry: FeedEntry): void {
    this.latest.delete(entry.task_id);
    this.latest.set(entry.task_id, entry);
    if (this.latest.size > LATEST_MAX) this.latest.delete(this.latest.keys().next().value!);
    const shown = this.items.get(entry.task_id);
    if (shown) {
      if (entry.ts < shown.row.updated_at) return;
      if (!matchesFilter(this.filter, entry)) return this.remove(entry.task_id);
      Object.assign(shown.row, { status: entry.status, progress: entry.progress, updated_at: entry.ts });
      shown.li.replaceChildren(this.button(shown.row));
      return;
    }
    if (!matchesFilter(this.filter, entry)) return;
    if (entry.status === 'PENDING' && this.filter.status === undefined) {
      const { task_id, type, status, progress, tags, ts } = entry;
      this.parts.list.prepend(this.show({ task_id, type, status, progress, tags, created_at: ts, updated_at: ts }));
      this.parts.empty.hidden = true;
    } else if (entry.status === 'SCHEDULED' || this.filter.status !== undefined) {
      void this.fetchInto(entry.task_id);
    }
  }

  /** Puts a task that entered the filter in its place by creation time, if that place is within the pages loaded. */
  private async fetchInto(taskId: string): Promise<void> {
    const generation = this.generation;
    let task: TaskState;
    try {
      task = await this.api.get(taskId);
    } catch {
      return; // Gone (expired) or unreachable: the next reload shows what there is.
    }
    const row = this.rowOf(task);
    if (generation !== this.generation || !row || this.items.has(taskId)) return;
    // The list is newest first: the new item goes before the newest of the older ones.
    let after: { row: Row; li: HTMLLIElement } | undefined;
    for (const item of this.items.values()) {
      if (item.row.created_at < row.created_at && (!after || item.row.created_at > after.row.created_at)) after = item;
    }
    if (!after && this.cursor !== null) return;
    const li = this.show(row);
    if (after) after.li.before(li);
    else this.parts.list.append(li);
    this.parts.empty.hidden = true;
  }

  /** The row of a task from GET /tasks, brought up to the newest feed entry seen; null when that leaves the filter. */
  private rowOf(task: TaskState): Row | null {
    const row: Row = { ...task };
    const seen = this.latest.get(task.task_id);
    if (seen && seen.ts >= row.updated_at) Object.assign(row, { status: seen.status, progress: seen.progress, updated_at: seen.ts });
    return matchesFilter(this.filter, row) ? row : null;
  }

  private show(row: Row): HTMLLIElement {
    const li = el('li', {}, [this.button(row)]);
    this.items.set(row.task_id, { row, li });
    return li;
  }

  private remove(taskId: string): void {
    this.items.get(taskId)?.li.remove();
    this.items.delete(taskId);
    this.showEmpty();
  }

  private showEmpty(): void {
    const { empty, list } = this.parts;
    const filtered = Object.keys(this.filter).length > 0;
    empty.textContent = filtered ? 'No recent tasks match the filters.' : 'No recent tasks.';
    empty.hidden = list.childElementCount > 0;
  }

  private button(row: Row): HTMLButtonElement {
    const when = row.status === 'SCHEDULED' ? (row.run_at === undefined ? 'scheduled' : `due ${clock(row.run_at)}`) : `${row.progress}%`;
    const button = el('button', { type: 'button', class: 'task-link', 'data-task-id': row.task_id }, [
      el('code', {}, [row.task_id]),
      ' ',
      el('span', { class: 'badge', 'data-status': row.status }, [row.status]),
      ` ${when} · ${row.type} · started ${clock(row.created_at)}`,
      ...(row.tags ?? []).flatMap((tag) => [' ', el('span', { class: 'tag' }, [tag])]),
    ]);
    button.addEventListener('click', () => this.hooks.onChoose(row.task_id));
    return button;
  }
}
