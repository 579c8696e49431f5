/** The JSON object a text frame holds, or null when the frame is binary, not JSON, or not an object. */
export function parseJsonObject(data: unknown): Record<string, unknown> | null {
  if (typeof data !== 'string') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}
