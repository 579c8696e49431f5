/** Most UTF-16 units of an `error` recorded with a failed attempt. */
export const ERROR_MAX_UNITS = 1000;

/**
 * Text for whatever a handler threw (or a toJSON or getter of its result): an Error's message,
 * else String(value); never throws, whatever the value (no prototype, a throwing getter or
 * toString, a message that is not a string).
 */
export function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) {
      const { message } = value;
      return typeof message === 'string' ? message : String(message);
    }
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return 'a value that cannot be shown';
    }
  }
}

/** The `error` field of a failed attempt: describeThrown, at most ERROR_MAX_UNITS long, never half a surrogate pair. */
export function errorText(value: unknown): string {
  const text = describeThrown(value);
  if (text.length <= ERROR_MAX_UNITS) return text;
  const cut = /[\uD800-\uDBFF]/.test(text[ERROR_MAX_UNITS - 1]!) ? ERROR_MAX_UNITS - 1 : ERROR_MAX_UNITS;
  return text.slice(0, cut);
}

/**
 * What a log line may carry as `err` for a thrown value: the Error itself when its message and
 * stack read as strings (pino then logs both), else describeThrown's text, so logging a thrown
 * value can never throw.
 */
export function loggableThrown(value: unknown): unknown {
  try {
    if (value instanceof Error && typeof value.message === 'string' && (value.stack === undefined || typeof value.stack === 'string')) return value;
  } catch {
    // A getter of the value threw: its text below.
  }
  return describeThrown(value);
}
