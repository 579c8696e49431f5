/**
 * Redis stream entry ids: `<ms>-<seq>`, both unsigned 64-bit. Clients send them back to resume,
 * so they are validated here before they reach Redis.
 */
export const EVENT_ID_RE = /^(\d{1,20})(?:-(\d{1,20}))?$/;
const U64_MAX = 18446744073709551615n;

export const ZERO_ID = '0-0';
/** The greatest id: nothing can come after it, and Redis refuses it as an exclusive start. */
export const MAX_EVENT_ID = `${U64_MAX}-${U64_MAX}`;

/** The canonical `<ms>-<seq>` form of a client-supplied id, or null when it is not a valid id. */
export function parseEventId(raw: string): string | null {
  const m = EVENT_ID_RE.exec(raw);
  if (!m) return null;
  const ms = BigInt(m[1]!);
  const seq = BigInt(m[2] ?? '0');
  if (ms > U64_MAX || seq > U64_MAX) return null;
  return `${ms}-${seq}`;
}

/** Orders canonical ids without BigInt: compare lengths, then digits. */
export function compareEventIds(a: string, b: string): number {
  const [am, as] = split(a);
  const [bm, bs] = split(b);
  return compareDigits(am, bm) || compareDigits(as, bs);
}

function split(id: string): [string, string] {
  const dash = id.indexOf('-');
  return dash === -1 ? [id, '0'] : [id.slice(0, dash), id.slice(dash + 1)];
}

function compareDigits(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
