import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** Where the page's bundle goes; the gateway serves this directory next to web/ (see src/http/app.ts). */
export const BUNDLE_DIR = fileURLToPath(new URL('../dist/public/', import.meta.url));

/**
 * Bundles the page (src/web/main.ts and the client modules it imports) into dist/public/app.js.
 * `npm run build:web` runs it; `npm start` and `npm run gateway` run it first (pre-scripts).
 */
export async function buildWeb(): Promise<void> {
  await build({
    entryPoints: [fileURLToPath(new URL('../src/web/main.ts', import.meta.url))],
    outfile: `${BUNDLE_DIR}app.js`,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    sourcemap: true,
    minify: true,
    logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildWeb();
