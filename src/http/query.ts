import type { ParsedUrlQuery } from 'node:querystring';

/**
 * One query parameter: its first value when it is repeated, as `URLSearchParams.get` reads it on
 * the WebSocket route, so every route resolves `?a=1&a=2` alike. Undefined when absent.
 */
export function queryParam(query: ParsedUrlQuery, name: string): string | undefined {
  const value = query[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Every parameter of `query` by its first value (see queryParam), e.g. for a zod schema. */
export function firstValues(query: ParsedUrlQuery): Record<string, string | undefined> {
  return Object.fromEntries(Object.keys(query).map((name) => [name, queryParam(query, name)]));
}
