import type { Priority, TaskEvent } from '../wire/events.js';
import type { TaskState } from '../wire/task-state.js';

/** A failed API call: the gateway's `{error: {code, message}}`, or UNREACHABLE (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The error's `details` as the server gave them (for a 400: the invalid fields), if any. */
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface StartTaskRequest {
  type?: string;
  params?: Record<string, unknown>;
  priority?: Priority;
  /** RFC 3339 time or epoch ms; not with delay_ms. */
  run_at?: string | number;
  delay_ms?: number;
  concurrency_key?: string;
  tags?: string[];
}

/** GET /tasks filters, as its query parameters (times: epoch ms or RFC 3339). */
export interface TaskListFilter {
  status?: string;
  type?: string;
  tag?: string;
  created_after?: string;
  created_before?: string;
}

interface EventPage {
  events: TaskEvent[];
  next_cursor: string | null;
}

export interface TaskOutputText {
  text: string;
  /** The last event the text accounts for. */
  last_event_id: string;
  /** The task's status as of that event. */
  status: string;
}

/** A start's answer: the state, plus `watch_token` when the gateway has auth on. */
export type StartedTaskState = TaskState & { watch_token?: string };

/** POST /tasks/<id>/watch-token's answer; both fields are null when the gateway has auth off. */
export interface WatchTokenGrant {
  task_id: string;
  watch_token: string | null;
  /** Epoch milliseconds. */
  expires_at: number | null;
}

/**
 * The token sent as `Authorization: Bearer <token>` on every request (an API token, or for the
 * reads of one task its watch token); a function is asked before each request, so a page can sign
 * in and out without a new client. Undefined: no header (auth off). Never put in a URL.
 */
export type TokenOption = string | (() => string | undefined);

export interface ApiClientOptions {
  token?: TokenOption | undefined;
}

export interface TaskPage {
  tasks: TaskState[];
  next_cursor: string | null;
}

/** The gateway's HTTP API over fetch; runs in browsers and in Node. */
export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly options: ApiClientOptions = {},
  ) {}

  /** With `idempotencyKey`, a retry answers the task the first call started (see Idempotency-Key). */
  start(body: StartTaskRequest, options: { idempotencyKey?: string } = {}): Promise<StartedTaskState> {
    const headers: Record<string, string> = options.idempotencyKey === undefined ? {} : { 'idempotency-key': options.idempotencyKey };
    return this.call('POST', '/tasks', body, headers);
  }

  get(taskId: string): Promise<TaskState> {
    return this.call('GET', `/tasks/${encodeURIComponent(taskId)}`);
  }

  /** Every event of the task, in log order: follows the pages of GET /tasks/<id>/events to the last. */
  async events(taskId: string): Promise<TaskEvent[]> {
    const all: TaskEvent[] = [];
    let after: string | null = null;
    do {
      const page: EventPage = await this.call('GET', `/tasks/${encodeURIComponent(taskId)}/events${after ? `?after=${after}` : ''}`);
      all.push(...page.events);
      after = page.next_cursor;
    } while (after !== null);
    return all;
  }

  /** The task's output text (GET /tasks/<id>/output): the exactly-once rule applied up to `last_event_id`. */
  async output(taskId: string): Promise<TaskOutputText> {
    const res = await this.send('GET', `/tasks/${encodeURIComponent(taskId)}/output`);
    return {
      text: res.text,
      last_event_id: res.headers.get('taskcast-last-event-id') ?? '',
      status: res.headers.get('taskcast-task-status') ?? '',
    };
  }

  list(options: { limit?: number; cursor?: string | null; filter?: TaskListFilter } = {}): Promise<TaskPage> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.cursor) query.set('cursor', options.cursor);
    for (const [name, value] of Object.entries(options.filter ?? {})) if (value !== undefined) query.set(name, value);
    const qs = query.toString();
    return this.call('GET', `/tasks${qs ? `?${qs}` : ''}`);
  }

  /**
   * The task types the gateway knows, as its OpenAPI document (GET /openapi.json, public) lists
   * them in the start request's `type` enum; [] when the document has no such enum.
   */
  async taskTypes(): Promise<string[]> {
    type Doc = { paths?: { '/tasks'?: { post?: { requestBody?: { content?: { 'application/json'?: { schema?: { properties?: { type?: { enum?: unknown } } } } } } } } } };
    const doc: Doc = await this.call('GET', '/openapi.json');
    const names = doc.paths?.['/tasks']?.post?.requestBody?.content?.['application/json']?.schema?.properties?.type?.enum;
    return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
  }

  cancel(taskId: string): Promise<unknown> {
    return this.call('POST', `/tasks/${encodeURIComponent(taskId)}/cancel`);
  }

  /** A fresh watch token for the task (POST /tasks/<id>/watch-token): what a browser puts in a socket URL instead of its API token. */
  watchToken(taskId: string): Promise<WatchTokenGrant> {
    return this.call('POST', `/tasks/${encodeURIComponent(taskId)}/watch-token`);
  }

  private async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const { parsed } = await this.send(method, path, body, headers);
    return parsed as T;
  }

  /** One request; throws ApiError unless the answer is 2xx. `parsed` is the body when it is JSON. */
  private async send(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ text: string; parsed: unknown; headers: Headers }> {
    const url = new URL(path, this.baseUrl);
    let res: Response;
    try {
      const headers: Record<string, string> = { ...extraHeaders, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
      const token = typeof this.options.token === 'function' ? this.options.token() : this.options.token;
      if (token) headers.authorization = `Bearer ${token}`;
      res = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      throw new ApiError(0, 'UNREACHABLE', `cannot reach the server at ${url.origin}${cause}`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' || !res.headers.get('content-type')?.includes('json') ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
      throw new ApiError(
        res.status,
        typeof error?.code === 'string' ? error.code : `HTTP_${res.status}`,
        typeof error?.message === 'string' ? error.message : `${method} ${path} failed with HTTP ${res.status}`,
        error?.details,
      );
    }
    return { text, parsed, headers: res.headers };
  }
}
