/**
 * WebSocket frames of every endpoint (`/ws/task/<id>`, `/ws/feed`, `/ws`). By default a text frame
 * holds one JSON message. With batches (the upgrade's `?batch=1`) every text frame is a JSON array
 * of one or more messages, in the order they would have come one per frame: the messages of one
 * turn of the gateway's event loop for that connection (a replay page, a read's live events, the
 * control messages among them), at most BATCH_MAX_BYTES of messages per frame (a larger message
 * goes alone). A browser pays for each frame about as much as for the message in it, so it takes a
 * long replay many times faster in batches.
 */

/** The upgrade's query parameter that asks for batches: `1` or `true` (absent, `0`, `false`: one message per frame). */
export const BATCH_PARAM = 'batch';

/** The most bytes of messages (their JSON) one batch frame holds; a larger message gets a frame alone. */
export const BATCH_MAX_BYTES = 64 * 1024;

/** The values of `?batch=`: true for `1` or `true`, false when absent, `0` or `false`, else null (refused with 400). */
export function parseBatchParam(value: string | null): boolean | null {
  if (value === null || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  return null;
}

/**
 * The JSON objects of one text frame, in order: a batch's (a JSON array of objects) or the one a
 * frame without batches holds; null when the frame is binary, not JSON, an empty array, or holds
 * anything but objects.
 */
export function parseJsonObjects(data: unknown): Record<string, unknown>[] | null {
  if (typeof data !== 'string') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (isObject(value)) return [value];
  return Array.isArray(value) && value.length > 0 && value.every(isObject) ? value : null;
}

/** The messages of one text frame as `parse` reads each of its objects; null when the frame or any message is malformed (`parse` gives null). */
export function parseFrame<T>(data: unknown, parse: (object: Record<string, unknown>) => T | null): T[] | null {
  const objects = parseJsonObjects(data);
  if (objects === null) return null;
  const messages: T[] = [];
  for (const object of objects) {
    const message = parse(object);
    if (message === null) return null;
    messages.push(message);
  }
  return messages;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
