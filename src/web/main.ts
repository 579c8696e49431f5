import { ApiClient } from '../client/api-client.js';
import { TaskWatchers } from '../client/task-watchers.js';
import { byId, isTaskId, showError } from './dom.js';
import { StartForm } from './start-form.js';
import { TaskCard } from './task-card.js';
import { TaskList } from './task-list.js';

const api = new ApiClient(location.origin);
/** One WebSocket for every card, kept a minute after the last card's task ends. */
const watchers = new TaskWatchers({ baseUrl: location.origin, lingerMs: 60_000 });
const cards = new Map<string, TaskCard>();
const cardsBox = byId<HTMLElement>('cards');
const noCards = byId<HTMLElement>('no-cards');

const list = new TaskList(
  api,
  {
    list: byId<HTMLUListElement>('task-list'),
    more: byId<HTMLButtonElement>('more-tasks'),
    error: byId<HTMLElement>('list-error'),
    empty: byId<HTMLElement>('no-tasks'),
  },
  (taskId) => observe(taskId),
);

/** Opens a card watching `taskId`, or brings its card into view if it is already watched. */
function observe(taskId: string): void {
  const id = taskId.toLowerCase();
  history.replaceState(null, '', `#task=${id}`);
  const existing = cards.get(id);
  if (existing) {
    existing.focus();
    return;
  }
  const card = new TaskCard(id, api, watchers, {
    onFinished: () => void list.refresh(),
    onDismiss: (c) => {
      cards.delete(c.taskId);
      c.root.remove();
      noCards.hidden = cards.size > 0;
    },
  });
  cards.set(id, card);
  cardsBox.prepend(card.root);
  noCards.hidden = true;
  card.start();
}

/** `/#task=<id>` opens the page watching that task, so a view can be shared. */
function observeFromHash(): void {
  const taskId = new URLSearchParams(location.hash.slice(1)).get('task');
  if (taskId === null) return;
  if (isTaskId(taskId)) observe(taskId);
  else showError(byId('observe-error'), `The link names "${taskId}", which is not a task id.`);
}

const startForm = new StartForm();

byId<HTMLFormElement>('start-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = byId('start-error');
  const button = byId<HTMLButtonElement>('start-button');
  const request = startForm.read();
  showError(error, request.ok ? '' : request.error);
  if (!request.ok) {
    request.input.focus();
    return;
  }
  button.disabled = true;
  try {
    const task = await api.start(request.body);
    observe(task.task_id);
    void list.refresh();
  } catch (err) {
    showError(error, `Could not start a task: ${(err as Error).message}`);
  } finally {
    button.disabled = false;
  }
});

byId<HTMLFormElement>('observe-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = byId<HTMLInputElement>('task-id');
  const error = byId('observe-error');
  const taskId = input.value.trim();
  const valid = isTaskId(taskId);
  input.setAttribute('aria-invalid', String(!valid));
  showError(error, valid ? '' : 'A task id is a UUID, like 3f2b9c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b.');
  if (!valid) {
    input.focus();
    return;
  }
  input.value = '';
  observe(taskId);
});

byId<HTMLButtonElement>('refresh-tasks').addEventListener('click', () => void list.refresh());
addEventListener('hashchange', observeFromHash);
observeFromHash();
void list.refresh();
