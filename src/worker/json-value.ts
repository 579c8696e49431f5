/**
 * The JSON text of a value that is exactly JSON: null, booleans, finite numbers, strings, arrays
 * and plain objects of those (a value with toJSON, such as a Date, counts as what it returns).
 * Throws a TypeError naming the first offending path instead of letting JSON.stringify drop or
 * change it silently (undefined, functions, symbols, NaN, Infinity, bigint, Map, cycles).
 */
export function jsonText(value: unknown): string {
  check(value, '$', new Set());
  return JSON.stringify(value);
}

function check(value: unknown, path: string, seen: Set<object>): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${path} is ${value}, which JSON cannot hold`);
    return;
  }
  if (typeof value !== 'object') throw new TypeError(`${path} is a ${typeof value}, which JSON cannot hold`);
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    check((value as { toJSON(): unknown }).toJSON(), path, seen);
    return;
  }
  if (seen.has(value)) throw new TypeError(`${path} refers back to itself (a cycle)`);
  seen.add(value);
  if (Array.isArray(value)) {
    value.forEach((item, i) => check(item, `${path}[${i}]`, seen));
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`${path} is a ${value.constructor?.name ?? 'non-plain object'}, not a plain object`);
    }
    for (const [key, item] of Object.entries(value)) check(item, `${path}.${key}`, seen);
  }
  seen.delete(value);
}
