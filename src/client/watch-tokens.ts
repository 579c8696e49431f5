import { CloseCode } from '../wire/close-codes.js';
import { ApiClient, ApiError } from './api-client.js';

/**
 * Gives the token a watch of `taskId` may show where no header can go (a browser's WebSocket URL
 * as `?token=`, a subscribe message): always a watch token, never an API token. Undefined: none is
 * needed (auth off). Rejecting with an ApiError stops the watch (see task-watcher.ts).
 */
export type WatchTokenSource = (taskId: string) => Promise<string | undefined>;

/**
 * How a watch proves it may watch when the gateway has auth on (API_TOKENS). Every watching client
 * (TaskWatcher, and any client of many tasks) takes these, so one sign-in serves them all.
 */
export interface WatchCredentials {
  /**
   * An API token, or the watched task's watch token, sent only as `Authorization: Bearer`: on the
   * socket when it can carry headers (Node's WebSocket can; a browser's cannot), and on the HTTP
   * check after a refused connection.
   */
  token?: string | undefined;
  /** Browsers: the watch token for the socket URL, asked for before every connection. */
  urlToken?: WatchTokenSource | undefined;
}

/** A token is traded for a new one this long before it expires, so none expires in flight. */
const RENEW_BEFORE_MS = 60_000;

/**
 * Watch tokens bought with an API token (POST /tasks/<id>/watch-token), one per task, kept until
 * RENEW_BEFORE_MS before they expire. `get` is a WatchTokenSource; concurrent calls for one task
 * share one request.
 */
export class WatchTokens {
  private readonly tokens = new Map<string, Promise<{ token: string | undefined; expiresAt: number }>>();

  constructor(
    private readonly api: ApiClient,
    private readonly nowMs: () => number = Date.now,
  ) {}

  readonly get: WatchTokenSource = async (taskId) => {
    const cached = this.tokens.get(taskId);
    if (cached) {
      const held = await cached.catch(() => undefined);
      if (held && held.expiresAt - RENEW_BEFORE_MS > this.nowMs()) return held.token;
      if (this.tokens.get(taskId) !== cached) return this.get(taskId);
    }
    const bought = this.api.watchToken(taskId).then((grant) => ({
      token: grant.watch_token ?? undefined,
      expiresAt: grant.expires_at ?? Number.POSITIVE_INFINITY,
    }));
    this.tokens.set(taskId, bought);
    bought.catch(() => {
      if (this.tokens.get(taskId) === bought) this.tokens.delete(taskId);
    });
    return (await bought).token;
  };

  /** Forgets every token (on sign-out). */
  clear(): void {
    this.tokens.clear();
  }
}

/** The close code an HTTP refusal stands for; other statuses (0 unreachable, 429, 5xx) may pass with time. */
const REFUSALS: Record<number, number> = {
  400: CloseCode.BAD_REQUEST,
  401: CloseCode.UNAUTHORIZED,
  403: CloseCode.FORBIDDEN,
  404: CloseCode.NOT_FOUND,
};

/** What an API error means for a watch: a refusal as a close code and reason, or null when retrying may help. */
export function refusalOf(err: unknown): { code: number; reason: string } | null {
  const code = err instanceof ApiError ? REFUSALS[err.status] : undefined;
  return code === undefined ? null : { code, reason: (err as ApiError).message };
}

/** The http(s) URL of a gateway given as http(s) or ws(s). */
function httpBase(baseUrl: string): string {
  const url = new URL(baseUrl);
  if (url.protocol === 'ws:') url.protocol = 'http:';
  if (url.protocol === 'wss:') url.protocol = 'https:';
  return url.toString();
}

/**
 * After a watch connection that never opened: may `token` (undefined: none) watch `taskId`?
 * Asks GET /tasks/<id> with it, the same check the socket's upgrade runs, because a refused
 * upgrade (401, no token or a wrong one) reaches a WebSocket client as a plain 1006 close. Returns
 * the refusal (401: 4401, 404: 4404, with the gateway's reason), or null: allowed, or unknown for
 * now (unreachable, 5xx), so the caller retries.
 */
export async function checkWatchAccess(baseUrl: string, taskId: string, token: string | undefined): Promise<{ code: number; reason: string } | null> {
  try {
    await new ApiClient(httpBase(baseUrl), { token }).get(taskId);
    return null;
  } catch (err) {
    return refusalOf(err);
  }
}
