import { describeThrown } from './thrown.js';

/**
 * The JSON text of a value that is exactly JSON: null, booleans, finite numbers, strings, arrays
 * and plain objects of those (a value with toJSON, such as a Date, counts as what it returns; -0
 * is written as 0, as JSON has no other). Throws a TypeError naming the first offending path
 * instead of letting JSON.stringify drop or change it silently: undefined, functions, symbols,
 * NaN, Infinity, bigint, class instances such as Map, cycles, holes in arrays, properties of an
 * array besides its items, symbol keys. A toJSON or getter that throws is such a TypeError too.
 * Each toJSON and getter is called once: the text is of what they returned then.
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(plain(value, '$', new Set()));
}

function plain(value: unknown, path: string, seen: Set<object>): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${path} is ${value}, which JSON cannot hold`);
    return value;
  }
  if (typeof value !== 'object') throw new TypeError(`${path} is a ${typeof value}, which JSON cannot hold`);
  const toJSON = read(() => (value as { toJSON?: unknown }).toJSON, `${path}.toJSON`);
  if (typeof toJSON === 'function') return plain(read(() => toJSON.call(value, ''), `${path}.toJSON()`), path, seen);
  if (seen.has(value)) throw new TypeError(`${path} refers back to itself (a cycle)`);
  if (Object.getOwnPropertySymbols(value).some((s) => Object.prototype.propertyIsEnumerable.call(value, s))) {
    throw new TypeError(`${path} has a symbol key, which JSON drops`);
  }
  seen.add(value);
  let out: unknown;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!Object.hasOwn(value, i)) throw new TypeError(`${path} has a hole at [${i}], which JSON writes as null`);
    }
    // Object.keys lists an array's items first, in order; what follows them JSON drops.
    const extra = Object.keys(value)[value.length];
    if (extra !== undefined) throw new TypeError(`${path} has a property ${JSON.stringify(extra)} besides its items, which JSON drops`);
    out = value.map((_, i) => plain(read(() => value[i], `${path}[${i}]`), `${path}[${i}]`, seen));
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`${path} is a ${read(() => value.constructor?.name, path) ?? 'non-plain object'}, not a plain object`);
    }
    // No prototype: a key named __proto__ stays a key.
    const copy: Record<string, unknown> = Object.create(null);
    for (const key of Object.keys(value)) {
      const at = `${path}.${key}`;
      copy[key] = plain(read(() => (value as Record<string, unknown>)[key], at), at, seen);
    }
    out = copy;
  }
  seen.delete(value);
  return out;
}

/** `get()`, with anything it throws turned into a TypeError naming `path`. */
function read<T>(get: () => T, path: string): T {
  try {
    return get();
  } catch (err) {
    throw new TypeError(`${path} threw ${describeThrown(err)}`);
  }
}
