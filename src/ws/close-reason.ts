/** Close reasons are limited to 123 bytes by RFC 6455. */
const MAX_BYTES = 123;

export function fitsCloseReason(text: string): boolean {
  return Buffer.byteLength(text, 'utf8') <= MAX_BYTES;
}

/** `text`, cut to fit a close reason when it is longer. */
export function closeReason(text: string): string {
  return fitsCloseReason(text) ? text : Buffer.from(text, 'utf8').subarray(0, MAX_BYTES - 3).toString('utf8') + '...';
}
