import type { ApiClient, TaskListFilter } from '../client/api-client.js';
import { TERMINAL_STATUSES, WAITING_STATUSES } from '../wire/events.js';
import { TAG_RE } from '../wire/feed.js';
import { byId, el, showError } from './dom.js';

/** The filter of the list: GET /tasks's `status`, `type` and `tag` (absent: any). */
export type ListFilter = Pick<TaskListFilter, 'status' | 'type' | 'tag'>;

/** The statuses the status filter offers: the ones the system records (stage statuses are the handlers' own). */
const STATUSES = [...WAITING_STATUSES, ...TERMINAL_STATUSES];

/** True when a task with this status, type and tags is in the filter's list (GET /tasks's rules). */
export function matchesFilter(filter: ListFilter, task: { status: string; type: string; tags?: readonly string[] | undefined }): boolean {
  if (filter.status !== undefined && task.status !== filter.status) return false;
  if (filter.type !== undefined && task.type !== filter.type) return false;
  return filter.tag === undefined || (task.tags ?? []).includes(filter.tag);
}

/**
 * The filters form of the Recent tasks list: a status (the fixed ones), a type (the gateway's,
 * from its OpenAPI document) and a tag (checked with TAG_RE; an invalid one is shown as an error
 * and nothing is queried). The filters live in the form only, not in the URL (the hash is the
 * `#task=` link's); applying them hands the filter to `onApply`.
 */
export class ListFilters {
  private readonly form = byId<HTMLFormElement>('list-filters');
  private readonly status = byId<HTMLSelectElement>('filter-status');
  private readonly type = byId<HTMLSelectElement>('filter-type');
  private readonly tag = byId<HTMLInputElement>('filter-tag');
  private readonly error = byId<HTMLElement>('filter-error');

  constructor(private readonly onApply: (filter: ListFilter) => void) {
    this.status.append(...STATUSES.map((s) => el('option', { value: s }, [s])));
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      const filter = this.read();
      if (filter) this.onApply(filter);
    });
  }

  /** Offers the task types the gateway knows; when it cannot say, the type filter offers "any" alone and says why. */
  async loadTypes(api: ApiClient): Promise<void> {
    try {
      const names = await api.taskTypes();
      this.type.replaceChildren(this.type.options[0]!, ...names.map((n) => el('option', { value: n }, [n])));
    } catch (err) {
      showError(this.error, `Could not load the task types: ${(err as Error).message}`);
    }
  }

  /** The filter the form describes, or null when the tag is invalid (marked aria-invalid, with an error). */
  private read(): ListFilter | null {
    const tag = this.tag.value.trim();
    const valid = tag === '' || TAG_RE.test(tag);
    this.tag.setAttribute('aria-invalid', String(!valid));
    showError(this.error, valid ? '' : 'A tag is 1 to 64 letters, digits or _ . : = @ / + - characters, like team:billing.');
    if (!valid) {
      this.tag.focus();
      return null;
    }
    const filter: ListFilter = {};
    if (this.status.value !== '') filter.status = this.status.value;
    if (this.type.value !== '') filter.type = this.type.value;
    if (tag !== '') filter.tag = tag;
    return filter;
  }
}
