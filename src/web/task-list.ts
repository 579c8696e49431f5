import type { ApiClient } from '../client/api-client.js';
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
    private readonly onChoose: (taskId: string) => void,
  ) {
    parts.more.addEventListener('click', () => void this.load(false));
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
    } catch (err) {
      showError(error, `Could not load recent tasks: ${(err as Error).message}`);
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
    button.addEventListener('click', () => this.onChoose(task.task_id));
    return el('li', {}, [button]);
  }
}
