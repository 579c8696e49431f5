/** Small DOM helpers for the page. Text always goes through textContent, never innerHTML. */

type Attrs = Record<string, string | number | boolean | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  children: (Node | string)[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
}

export function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
}

/** Local wall-clock time with milliseconds, e.g. 14:03:07.250. */
export function clock(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

const NUMBER = new Intl.NumberFormat('en');

/** `n` and its noun, e.g. "1 line", "100,000 lines". */
export function counted(n: number, noun: string): string {
  return `${NUMBER.format(n)} ${n === 1 ? noun : `${noun}s`}`;
}

/** Shows `message` in an in-page error slot (empty hides it). */
export function showError(slot: HTMLElement, message: string): void {
  slot.textContent = message;
  slot.hidden = message === '';
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isTaskId(text: string): boolean {
  return UUID_RE.test(text);
}
