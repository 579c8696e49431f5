import { ApiClient, ApiError } from '../client/api-client.js';
import { CloseCode } from '../wire/close-codes.js';
import { TaskWatchers } from '../client/task-watchers.js';
import { byId, isTaskId, showError } from './dom.js';
import { ListFilters } from './list-filters.js';
import { SessionToken } from './session-token.js';
import { StartForm } from './start-form.js';
import { TaskCard } from './task-card.js';
import { TaskList } from './task-list.js';

/**
 * The page. With auth off it needs no token. With auth on (a 401 on its first list call) it asks
 * for an API token (SessionToken) and sends it only as a header, and inside the subscribe
 * messages of its one multiplexed socket (the cards' watches and the list's feed), never in a URL.
 * `/#task=<id>&token=<watch token>` opens it read-only: that task's card and nothing else, no
 * start, no list, no cancel.
 */
const hashParams = () => new URLSearchParams(location.hash.slice(1));
const linkToken = hashParams().get('token') || undefined;
/** `/#tag=<tag>&token=<tag token>`: the live list of that tag's tasks, read-only. */
const linkTag = hashParams().get('tag') || undefined;
const readOnly = linkToken !== undefined;

const session = new SessionToken(sessionStorage);
const api = new ApiClient(location.origin, { token: () => linkToken ?? session.token });
/** The page's one WebSocket: every card and the list's feed; kept a minute after the last user ends. */
const watchers = new TaskWatchers({ baseUrl: location.origin, lingerMs: 60_000 });
const cards = new Map<string, TaskCard>();
const cardsBox = byId<HTMLElement>('cards');
const noCards = byId<HTMLElement>('no-cards');
const app = byId<HTMLElement>('app');
const signIn = byId<HTMLElement>('sign-in');
const signOut = byId<HTMLButtonElement>('sign-out');
const startError = byId('start-error');
/** The start error on screen came from a failed request (not a bad field), so an answer from the gateway clears it. */
let startFailed = false;

/** The gateway answered: a start error that said it could not be reached is stale now. */
function gatewayAnswered(): void {
  if (!startFailed) return;
  startFailed = false;
  showError(startError, '');
}

const list = new TaskList(
  api,
  {
    list: byId<HTMLUListElement>('task-list'),
    more: byId<HTMLButtonElement>('more-tasks'),
    error: byId<HTMLElement>('list-error'),
    empty: byId<HTMLElement>('no-tasks'),
  },
  {
    // A tag token cannot watch a task: a tag link's list only shows.
    onChoose: (taskId) => linkTag === undefined && observe(taskId),
    onLoaded: () => {
      gatewayAnswered();
      signOut.hidden = session.token === undefined;
    },
    onUnauthorized: () => (session.token === undefined ? requireSignIn('') : tokenRefused()),
  },
);

const filters = new ListFilters((filter) => void list.setFilter(filter));

/** Keeps the list live from the feed of all tasks, on the page's one socket; with auth on, with the API token. */
function followFeed(): void {
  list.follow(watchers, session.token, (state) => {
    if (state.state === 'live') gatewayAnswered();
    else if (state.state === 'failed' && state.code === CloseCode.UNAUTHORIZED) tokenRefused();
  });
}

/** A signed-in page's token stopped working (rotated): back to the sign-in form. */
function tokenRefused(): void {
  if (!readOnly && session.token !== undefined) requireSignIn('The gateway no longer accepts your token: sign in again.');
}

/** Opens a card watching `taskId`, or brings its card into view if it is already watched. */
function observe(taskId: string): void {
  const id = taskId.toLowerCase();
  if (!readOnly) history.replaceState(null, '', `#task=${id}`);
  const existing = cards.get(id);
  if (existing) {
    existing.focus();
    return;
  }
  const card = new TaskCard(
    id,
    api,
    watchers,
    {
      onFinished: () => {
        if (!readOnly) void list.refresh();
      },
      onDismiss: (c) => {
        cards.delete(c.taskId);
        c.root.remove();
        noCards.hidden = cards.size > 0;
      },
      onLive: gatewayAnswered,
      onUnauthorized: tokenRefused,
    },
    { token: linkToken ?? session.token, readOnly },
  );
  cards.set(id, card);
  cardsBox.prepend(card.root);
  noCards.hidden = true;
  card.start();
}

/** `/#task=<id>` opens the page watching that task, so a view can be shared. */
function observeFromHash(): void {
  const taskId = hashParams().get('task');
  if (taskId === null) return;
  if (isTaskId(taskId)) observe(taskId);
  else showError(byId('observe-error'), `The link names "${taskId}", which is not a task id.`);
}

/** Auth is on and the page has no valid API token: forget everything it showed, ask for one. */
function requireSignIn(message: string): void {
  session.clear();
  for (const card of cards.values()) {
    void card.close();
    card.root.remove();
  }
  cards.clear();
  noCards.hidden = false;
  list.clear();
  app.hidden = true;
  signOut.hidden = true;
  signIn.hidden = false;
  showError(byId('sign-in-error'), message);
  byId('api-token').focus();
}

byId<HTMLFormElement>('sign-in-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = byId<HTMLInputElement>('api-token');
  const error = byId('sign-in-error');
  const button = byId<HTMLButtonElement>('sign-in-button');
  const token = input.value.trim();
  input.setAttribute('aria-invalid', String(token === ''));
  if (token === '') {
    showError(error, 'Enter an API token.');
    return;
  }
  session.set(token);
  button.disabled = true;
  try {
    await api.list({ limit: 1 });
  } catch (err) {
    session.clear();
    const refused = err instanceof ApiError && err.status === 401;
    input.setAttribute('aria-invalid', String(refused));
    showError(error, refused ? `The gateway refused this token: ${err.message}.` : `Could not sign in: ${(err as Error).message}`);
    return;
  } finally {
    button.disabled = false;
  }
  input.value = '';
  showError(error, '');
  signIn.hidden = true;
  app.hidden = false;
  signOut.hidden = false;
  void list.refresh();
  followFeed();
  observeFromHash();
});

signOut.addEventListener('click', () => {
  history.replaceState(null, '', location.pathname);
  requireSignIn('');
});

const startForm = new StartForm();

byId<HTMLFormElement>('start-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const button = byId<HTMLButtonElement>('start-button');
  const request = startForm.read();
  startFailed = false;
  showError(startError, request.ok ? '' : request.error);
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
    if (err instanceof ApiError && err.status === 401) return requireSignIn('The gateway no longer accepts your token: sign in again.');
    startFailed = true;
    showError(startError, `Could not start a task: ${(err as Error).message}`);
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
// A link with another watch token (or none) is another mode of the page.
addEventListener('hashchange', () => ((hashParams().get('token') || undefined) !== linkToken ? location.reload() : observeFromHash()));

if (readOnly && linkTag !== undefined) {
  byId('task-forms').hidden = true;
  for (const id of ['list-filters', 'refresh-tasks', 'more-tasks']) byId(id).hidden = true;
  byId('read-only').textContent = `Read-only: this link follows the tasks tagged ${linkTag}, live. Sign in with an API token (open the page without the link) to start, watch or cancel tasks.`;
  byId('read-only').hidden = false;
  list.followTag(watchers, linkTag, linkToken!);
} else if (readOnly) {
  byId('task-forms').hidden = true;
  byId('recent-tasks').hidden = true;
  byId('read-only').hidden = false;
  observeFromHash();
} else {
  void list.refresh().then(() => app.hidden || observeFromHash());
  followFeed();
  void filters.loadTypes(api);
}
