import type { Redis } from '../../src/store/redis.js';
import { eventsKey } from '../../src/store/keys.js';
import { nowMs, watch, type Watched } from './load.js';
import type { LiteHttp } from './http-lite.js';

/** POSTs `n` tasks and returns their ids. */
export async function startTasks(http: LiteHttp, n: number, body: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await http.post('/tasks', body);
    if (res.status !== 202) throw new Error(`POST /tasks answered ${res.status}`);
    ids.push((JSON.parse(res.body) as { task_id: string }).task_id);
  }
  return ids;
}

/**
 * Opens one watcher per entry of `plan` (task id, lastEventId), `batch` handshakes at a time so
 * that the listen backlog is not what gets measured, each batch once it has its first message.
 */
export async function openWatchers(
  port: number,
  plan: [string, string | undefined][],
  batch: number,
  onText?: (index: number, data: string, at: number) => void,
): Promise<Watched[]> {
  const out: Watched[] = [];
  for (let i = 0; i < plan.length; i += batch) {
    const group = plan.slice(i, i + batch).map(([taskId, last], j) =>
      watch(port, taskId, last, onText && ((d, at) => onText(i + j, d, at))),
    );
    out.push(...group);
    await until(() => group.every((w) => w.openedAt > 0), 'watchers to open', 60_000);
  }
  return out;
}

export async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface Exactness {
  expected: number;
  delivered: number;
  /** Stream entries a watcher never got. */
  gaps: number;
  /** Entries a watcher got more than once. */
  duplicates: number;
  /** Entries out of order or not in the stream. */
  wrong: number;
}

/** Compares what each watcher got (all its sockets, concatenated) with XRANGE of its task. */
export async function checkExact(redis: Redis, got: { taskId: string; ids: string[] }[]): Promise<Exactness> {
  const truth = new Map<string, string[]>();
  for (const taskId of new Set(got.map((g) => g.taskId))) {
    truth.set(taskId, (await redis.xrange(eventsKey(taskId), '-', '+')).map(([id]) => id));
  }
  const r: Exactness = { expected: 0, delivered: 0, gaps: 0, duplicates: 0, wrong: 0 };
  for (const { taskId, ids } of got) {
    const all = truth.get(taskId)!;
    r.expected += all.length;
    r.delivered += ids.length;
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) r.duplicates += 1;
      seen.add(id);
    }
    r.gaps += all.filter((id) => !seen.has(id)).length;
    const inOrder = all.filter((id) => seen.has(id));
    const firstSeen = [...new Set(ids)];
    if (firstSeen.length !== inOrder.length || firstSeen.some((id, i) => id !== inOrder[i])) r.wrong += 1;
  }
  return r;
}

export const idOf = (json: string): string => (JSON.parse(json) as { id: string }).id;
export { nowMs };
