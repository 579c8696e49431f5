/**
 * The fuzzer's inputs: random and mutated task ids, event ids, tokens, paths, bodies and whole
 * HTTP requests, all drawn from one seeded generator so that a seed replays the same inputs.
 */

/** mulberry32: small, fast, seedable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Generators over one seeded stream. `knownIds` and `watchTokens` are filled by the caller with
 * real task ids and tokens, so that many mutations start from valid values.
 */
export function createInputs(seed: number, apiToken: string) {
  const rand = rng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => rand() < p;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

  const knownIds: string[] = [];
  const watchTokens: string[] = [];
  const uuid = () => '00000000-0000-4000-8000-000000000000'.replace(/0/g, () => int(16).toString(16));
  const ID_TRICKS = ['*', '?', ':', '{', '}', ' ', '%00', '%2e%2e', '..', '%2F', '\\', '%', '%ZZ', '[', ']', "'", '"', '<', '\u00e9', '%E0%A4%A'];

  function taskId(): string {
    const base = knownIds.length > 0 && chance(0.6) ? pick(knownIds) : uuid();
    switch (int(6)) {
      case 0:
        return base;
      case 1:
        return base + pick(ID_TRICKS);
      case 2:
        return pick(ID_TRICKS) + base;
      case 3:
        return base.toUpperCase();
      case 4:
        return base.slice(0, int(base.length));
      default:
        return Array.from({ length: 1 + int(40) }, () => pick(ID_TRICKS.concat(['a', '0', '-']))).join('');
    }
  }

  function eventId(): string {
    return pick(['', '0', '0-0', '$', '+', '-', '>', '1-', '-1', '1e3', ' 1', '18446744073709551616-0', '99999999999999-0', `${Date.now()}-${int(10)}`, '%FF', 'abc', '0-0-0']);
  }

  function token(): string | undefined {
    return pick([undefined, apiToken, apiToken + 'x', '', 'null', watchTokens.length ? pick(watchTokens) : 'x.y', `${Date.now()}.${'A'.repeat(43)}`, bytes(8).toString('base64')]);
  }

  function path(): string {
    const id = taskId();
    const base = pick([
      '/tasks',
      '/start-task',
      `/tasks/${id}`,
      `/tasks/${id}/events`,
      `/tasks/${id}/events?after=${eventId()}`,
      `/tasks/${id}/cancel`,
      `/sse/task/${id}?lastEventId=${eventId()}`,
      `/ws/task/${id}`,
      '/',
      '/index.html',
      '/app.js',
      '/style.css',
      '/../package.json',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/.gitignore',
      '/web/',
      '//tasks',
      '/TASKS',
      '/tasks/',
      `/tasks?${'a=1&'.repeat(int(200))}`,
      '/tasks?status=COMPLETED&type=reference&tag=a&created_after=0&created_before=2100-01-01T00:00:00Z&limit=3',
    ]);
    if (chance(0.2)) return mutateText(base);
    if (chance(0.2)) return `${base}${base.includes('?') ? '&' : '?'}token=${encodeURIComponent(token() ?? '')}`;
    return base;
  }

  const SEED_BODIES = [
    '{}',
    '{"stage_ms":0}',
    '{"stage_ms":25}',
    '{"type":"reference","params":{"stage_ms":10}}',
    '{"params":{}}',
    '[]',
    'null',
    '"x"',
    '{"stage_ms":-1}',
    '{"stage_ms":1e400}',
    '{"tags":["a","b:c"]}',
    '{"params":{"stage_ms":5},"tags":["x","y","z"]}',
  ];

  /** Byte-level and token-level mutations of a seed. */
  function mutateText(text: string): string {
    let s = text;
    for (let n = 1 + int(3); n > 0; n--) {
      const at = int(s.length + 1);
      switch (int(7)) {
        case 0:
          s = s.slice(0, at) + String.fromCharCode(int(256)) + s.slice(at);
          break;
        case 1:
          s = s.slice(0, at) + s.slice(at + 1 + int(4));
          break;
        case 2:
          s = s.replace(/\d+/, pick(['-1', '0.5', '1e12', '9007199254740993', 'NaN', '"1"', 'null', '[]', '{}']));
          break;
        case 3:
          s = s.slice(0, at) + s.slice(int(s.length));
          break;
        case 4:
          s = s.slice(0, at) + pick(['{', '}', '[', ']', '"', ',', ':', '\\', '\u0000', '%', '\r\n', '"__proto__":{}', '"extra":1']) + s.slice(at);
          break;
        case 5:
          s = s + s.slice(0, int(s.length));
          break;
        default:
          s = s.replace(/[a-z]/, (c) => c.toUpperCase());
      }
    }
    return s;
  }

  function body(): Buffer | undefined {
    switch (int(6)) {
      case 0:
        return undefined;
      case 1:
        return bytes(int(2000));
      case 2:
        return Buffer.from('x'.repeat(16_000 + int(10_000)));
      case 3:
        return Buffer.from(pick(SEED_BODIES));
      default:
        return Buffer.from(mutateText(pick(SEED_BODIES)), 'latin1');
    }
  }

  function httpRequest(): Buffer {
    const method = pick(['GET', 'GET', 'POST', 'POST', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'CONNECT', 'TRACE']);
    const payload = method === 'GET' && chance(0.8) ? undefined : body();
    const lines = [`${method} ${path()} HTTP/1.1`, 'Host: 127.0.0.1'];
    const t = token();
    if (t !== undefined) lines.push(`Authorization: ${pick(['Bearer ', 'bearer ', 'Basic ', 'Bearer  ', ''])}${t}`);
    if (payload || chance(0.2)) lines.push(`Content-Type: ${pick(['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/jsonx'])}`);
    if (payload) {
      if (chance(0.15)) lines.push('Transfer-Encoding: chunked');
      else lines.push(`Content-Length: ${chance(0.1) ? payload.length + int(50) - 25 : payload.length}`);
    }
    if (chance(0.15)) lines.push(`Idempotency-Key: ${pick(['k1', 'k2', mutateText('k3'), 'k'.repeat(250 + int(10))])}`);
    if (chance(0.1)) lines.push(`Origin: ${pick(['https://evil.example', 'null', 'http://localhost:1'])}`);
    if (chance(0.05)) lines.push(`X-Big: ${'h'.repeat(int(20_000))}`);
    lines.push('Connection: close');
    const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    if (!payload) return head;
    if (lines.includes('Transfer-Encoding: chunked')) {
      return Buffer.concat([head, Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]);
    }
    return Buffer.concat([head, payload]);
  }

  return { rand, int, pick, chance, bytes, knownIds, watchTokens, taskId, eventId, token, path, mutateText, body, httpRequest };
}
