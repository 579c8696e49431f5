import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** The top self-time functions of each .cpuprofile in `dir`, as text. */
export function summarizeProfiles(dir: string, top = 15): string {
  const out: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[] };
    const self = new Map<string, number>();
    let total = 0;
    for (const n of profile.nodes) {
      const hits = n.hitCount ?? 0;
      total += hits;
      const url = n.callFrame.url.replace(/^.*\/(node_modules\/|src\/)/, '$1');
      const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + hits);
    }
    // Skips the module-loader thread's profile (tsx), which holds a handful of samples.
    if (total < 100) continue;
    out.push(`\n${file}: top ${top} by self time (${total} samples)`);
    for (const [key, hits] of [...self].sort((x, y) => y[1] - x[1]).slice(0, top)) {
      out.push(`  ${((hits / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
    }
  }
  return `${out.join('\n')}\n`;
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** The top allocation sites (sampled bytes, by function) of each .heapprofile in `dir`, as text. */
export function summarizeHeapProfiles(dir: string, top = 20): string {
  const out: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.heapprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { head: HeapNode };
    const self = new Map<string, number>();
    let total = 0;
    const walk = (n: HeapNode) => {
      total += n.selfSize;
      const url = n.callFrame.url.replace(/^.*\/(node_modules\/|src\/)/, '$1');
      const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + n.selfSize);
      for (const c of n.children) walk(c);
    };
    walk(profile.head);
    if (total === 0) continue;
    out.push(`\n${file}: top ${top} allocation sites by bytes allocated (${Math.round(total / 1024)} KB sampled, collected objects included)`);
    for (const [key, bytes] of [...self].sort((x, y) => y[1] - x[1]).slice(0, top)) {
      out.push(`  ${((bytes / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
    }
  }
  return `${out.join('\n')}\n`;
}
