import { ApiError, type ApiClient } from '../client/api-client.js';
import type { TaskState } from '../wire/task-state.js';
import { clock, el, showError } from './dom.js';

const PAGE_SIZE = 10;

/**
 * Recent tasks from GET /tasks, newest first, a page at a time ("Load more" follows the cursor).
 * The list lives on the server, so it survives a reload; choosing a task observes it.
 */
export class TaskList {
  private cursor: string | null = null;

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

  /** Empties the list (on sign-out). */
  clear(): void {
    this.parts.list.replaceChildren();
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
    const { list, more, error, empty } = this.parts;
    more.disabled = true;
    try {
      const page = await this.api.list({ limit: PAGE_SIZE, cursor: fromTop ? null : this.cursor });
      if (fromTop) list.replaceChildren();
      list.append(...page.tasks.map((task) => this.item(task)));
      this.cursor = page.next_cursor;
      showError(error, '');
      empty.hidden = list.childElementCount > 0;
      this.hooks.onLoaded();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.hooks.onUnauthorized(err);
      else showError(error, `Could not load recent tasks: ${(err as Error).message}`);
    }
    more.hidden = this.cursor === null;
    more.disabled = false;
  }

  private item(task: TaskState): HTMLLIElement {
    const button = el('button', { type: 'button', class: 'task-link', 'data-task-id': task.task_id }, [
      el('code', {}, [task.task_id]),
      ' ',
      el('span', { class: 'badge', 'data-status': task.status }, [task.status]),
      ` ${task.progress}% · started ${clock(task.created_at)}`,
    ]);
    button.addEventListener('click', () => this.hooks.onChoose(task.task_id));
    return el('li', {}, [button]);
  }
}
