import { validate as isUuid } from 'uuid';

/** Task ids are UUIDs (any version, any case); the canonical form is lower case. Null: not a task id. */
export function parseTaskId(raw: string): string | null {
  return isUuid(raw) ? raw.toLowerCase() : null;
}
