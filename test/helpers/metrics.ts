/** Prometheus text exposition, parsed enough for tests: `name{labels}` -> value. */
export class Scrape {
  readonly samples = new Map<string, number>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const at = line.lastIndexOf(' ');
      this.samples.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
  }

  /** The sample's value; undefined when absent. Labels are matched in the order given. */
  get(name: string, labels: Record<string, string> = {}): number | undefined {
    const keys = Object.entries(labels);
    for (const [key, value] of this.samples) {
      if (key !== name && !key.startsWith(`${name}{`)) continue;
      const got = key.startsWith(`${name}{`) ? parseLabels(key.slice(name.length + 1, -1)) : {};
      if (keys.length === Object.keys(got).length && keys.every(([k, v]) => got[k] === v)) return value;
    }
    return undefined;
  }

  /** `get`, with absent counted as 0 (a counter never incremented has no labelled sample). */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.get(name, labels) ?? 0;
  }
}

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

export async function scrape(baseUrl: string): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return new Scrape(await res.text());
}
