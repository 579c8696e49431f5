#!/usr/bin/env node
// Launcher for the `taskcast` CLI. In a checkout (src/ present and the dev dependency tsx
// installed) it runs the TypeScript source through tsx, so it is never stale; otherwise (the
// production image, dev dependencies omitted) it runs the compiled dist/bin/taskcast.js.
import { existsSync } from 'node:fs';

const source = new URL('../src/bin/taskcast.ts', import.meta.url);
const built = new URL('../dist/bin/taskcast.js', import.meta.url);

async function tsxApi() {
  try {
    return await import('tsx/esm/api');
  } catch {
    return undefined;
  }
}

const tsx = existsSync(source) ? await tsxApi() : undefined;
if (tsx) {
  tsx.register();
  await import(source.href);
} else if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write('taskcast: not built. Run `npm install` (checkout) or `npm run build` (dist/).\n');
  process.exit(5);
}
