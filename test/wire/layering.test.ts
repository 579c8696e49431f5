import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The module specifiers of a TypeScript file: static imports, re-exports and dynamic imports. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm)].map((m) => m[1]!);
}

/** For each .ts file of `area` (a folder of src), the src folders and packages it imports. */
function importsOf(area: string): { file: string; target: string }[] {
  const out: { file: string; target: string }[] = [];
  for (const name of readdirSync(join(SRC, area), { recursive: true }) as string[]) {
    if (!name.endsWith('.ts')) continue;
    const file = join(SRC, area, name);
    for (const spec of specifiers(file)) {
      const target = spec.startsWith('.') ? relative(SRC, resolve(dirname(file), spec)).split('/')[0]! : `package:${spec}`;
      out.push({ file: relative(SRC, file), target });
    }
  }
  return out;
}

const outside = (area: string, allowed: string[]) => importsOf(area).filter((i) => !allowed.includes(i.target));

test('src/wire, the bottom of the tree, imports no other part of src (only the uuid package)', () => {
  assert.deepEqual(outside('wire', ['wire', 'package:uuid']), []);
});

test('src/client imports only src/wire, so a bundle of it can hold no server code', () => {
  assert.deepEqual(outside('client', ['client', 'wire']), []);
});

test("the page's script (src/web) imports only the client and the wire", () => {
  assert.deepEqual(outside('web', ['web', 'client', 'wire']), []);
});

test('the import scan sees imports (a check that cannot fail proves nothing)', () => {
  assert.ok(importsOf('web').some((i) => i.target === 'client'));
  assert.ok(importsOf('client').some((i) => i.target === 'wire'));
});
