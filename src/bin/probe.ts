/**
 * `node dist/bin/probe.js <url>`: exits 0 when the URL answers 2xx within 2 s, 1 otherwise.
 * For container healthchecks: the image has neither curl nor wget.
 */
const TIMEOUT_MS = 2000;
const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: probe <url>\n');
  process.exit(2);
}
fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) }).then(
  (res) => {
    process.stdout.write(`${res.status}\n`);
    process.exit(res.ok ? 0 : 1);
  },
  (err: unknown) => {
    process.stderr.write(`${url}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
