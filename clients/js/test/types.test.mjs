// wasmeter.d.ts: a typed use of the whole API compiles (`tsc --noEmit`, strict), with
// the package resolved through package.json's `exports`/`types`; and the declarations
// name exactly the module's exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as client from '../wasmeter.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = `${root}node_modules/typescript/bin/tsc`;

test('a typed use of the whole API compiles under tsc --noEmit', () => {
  assert.ok(existsSync(tsc), `typescript is not installed: run \`npm ci\` in ${root}`);
  try {
    execFileSync(process.execPath, [tsc, '-p', 'test/tsconfig.json'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
});

test('the declarations name exactly the exports', () => {
  const dts = readFileSync(`${root}wasmeter.d.ts`, 'utf8');
  const declared = [...dts.matchAll(/^export (?:function|class) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(client).sort());
});

test('package.json points at the module and its types, and ships both', () => {
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
  assert.equal(pkg.exports['.'].default, './wasmeter.js');
  assert.equal(pkg.exports['.'].types, './wasmeter.d.ts');
  assert.equal(pkg.types, './wasmeter.d.ts');
  for (const f of ['wasmeter.js', 'wasmeter.d.ts', 'README.md']) {
    assert.ok(pkg.files.includes(f), f);
    assert.ok(existsSync(`${root}${f}`), f);
  }
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}), [], 'dependency-free');
});
