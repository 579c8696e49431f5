import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.js';

/** Printable ASCII (space to tilde), 1 to 255 characters, as Stripe and the IETF draft use it. */
const IDEMPOTENCY_KEY_RE = /^[\x20-\x7e]{1,255}$/;

/** The request's Idempotency-Key, or undefined without one; 400 INVALID_IDEMPOTENCY_KEY when malformed. */
export function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const values = req.headersDistinct['idempotency-key'];
  if (values === undefined) return undefined;
  if (values.length !== 1) throw new AppError('INVALID_IDEMPOTENCY_KEY', 'send at most one Idempotency-Key header');
  const key = values[0]!;
  if (!IDEMPOTENCY_KEY_RE.test(key)) {
    throw new AppError('INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 255 printable ASCII characters');
  }
  return key;
}

/**
 * What makes two starts "the same request": sha256 (hex) of the canonical JSON (object keys
 * sorted, undefined dropped) of `request`, the start as validated (type resolved, params with
 * their defaults, every start option).
 */
export function requestFingerprint(request: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
