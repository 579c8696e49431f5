import type { Context } from 'koa';
import { AppError } from '../errors.js';

/** Request bodies are small JSON documents; anything bigger is refused with 413. */
export const MAX_BODY_BYTES = 16 * 1024;

/** Reads a JSON body. An absent body is `undefined`; a body must be application/json. */
export async function readJsonBody(ctx: Context): Promise<unknown> {
  const length = ctx.request.length;
  const chunked = ctx.get('transfer-encoding') !== '';
  if (!chunked && !length) return undefined;
  if (!ctx.request.is('application/json')) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'request body must be application/json');
  }
  if (length && length > MAX_BODY_BYTES) {
    throw new AppError('PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        throw new AppError('PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    // The client went away (or timed out, see HTTP_REQUEST_TIMEOUT_MS) mid-body: its fault, not ours.
    if (err instanceof AppError) throw err;
    throw new AppError('BAD_REQUEST', 'request body was not received completely');
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('INVALID_BODY', 'request body is not valid JSON');
  }
}
