import { hostname } from 'node:os';

/** A worker's consumer name in the `workers` group: `<host>-<pid>-<8 hex>`. */
const NAME_RE = /^(.+)-(\d+)-[0-9a-f]{8}$/;

/**
 * True for the consumer of a worker of this host that is no longer running: its process is gone,
 * or it had this process's pid (a restarted container reuses pid 1), so it was a predecessor.
 * Consumers of other hosts are never judged here: they are reclaimed once idle.
 */
export function isGoneConsumer(name: string, own: string): boolean {
  const m = NAME_RE.exec(name);
  if (!m || name === own || m[1] !== hostname()) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
