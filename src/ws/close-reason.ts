/** Close reasons are limited to 123 bytes by RFC 6455. */
export function closeReason(text: string): string {
  const buf = Buffer.from(text, 'utf8');
  return buf.length <= 123 ? text : buf.subarray(0, 120).toString('utf8') + '...';
}
