/**
 * bulwark/fetch as users install it: built, packed, extracted into a fresh project. It
 * composes the core's own policies, so the entry takes the core from `bulwark` itself and
 * never carries a copy of the engine. Needs `dist/` built (`npx tsup`; `npm test` builds
 * before vitest runs).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked, root } from '../fixtures/packed.js';

const run = promisify(execFile);
const built = ['fetch.js', 'fetch.cjs', 'fetch.d.ts', 'fetch.d.cts'].map((file) => join(root, 'dist', file));

// A server answering 503 then 200: the call is retried, and its policies are the core's own.
const scenario = `
  const http = require_('node:http');
  let served = 0;
  const server = http.createServer((req, res) => { served++; res.statusCode = served === 1 ? 503 : 200; res.end('served ' + served); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = 'http://127.0.0.1:' + server.address().port;
  const registry = new core.MetricsRegistry();
  const api = fetchEntry.resilientFetch({ name: 'api', retry: { baseDelay: 1 }, metrics: registry });
  const response = await api(origin + '/x');
  const text = await response.text();
  const outer = core.compose(core.withTimeout(1000), api.policyOf(origin));
  console.log(JSON.stringify({
    status: response.status,
    text,
    oneEngine: api.breakers instanceof core.CircuitBreakerGroup,
    composed: await outer.execute(() => 'composed'),
    tracked: registry.snapshot().policies.map((policy) => policy.kind).sort(),
  }));
  server.close();
`;
const expected = {
  status: 200,
  text: 'served 2',
  oneEngine: true,
  composed: 'composed',
  tracked: ['circuit-breaker', 'fetch', 'retry', 'timeout', 'timeout'],
};

let installed: { dir: string; remove: () => void };

beforeAll(async () => {
  const missing = built.filter((file) => !existsSync(file));
  if (missing.length > 0) throw new Error(`The built package is missing ${missing.join(', ')}: run \`npx tsup\` first`);
  installed = await installPacked();
  writeFileSync(join(installed.dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
}, 60_000);

afterAll(() => installed?.remove());

async function node(args: string[]): Promise<unknown> {
  const { stdout, stderr } = await run(process.execPath, args, { cwd: installed.dir, timeout: 15_000, env: { ...process.env, NODE_OPTIONS: '' } });
  expect(stderr).toBe('');
  return JSON.parse(stdout);
}

describe('bulwark/fetch, built and installed', () => {
  it('dist/fetch.js imports the core from "bulwark" and shared chunks only: no copy of the engine, no node: module', () => {
    for (const file of ['fetch.js', 'fetch.cjs']) {
      const code = readFileSync(join(root, 'dist', file), 'utf8');
      expect(code).not.toMatch(/class (PolicyBase|LayerPolicy|CircuitBreaker|RetryPolicy)\b|\bfunction compose\b|class Call\b/);
      expect(code).not.toMatch(/['"]node:/);
    }
    const esm = readFileSync(join(root, 'dist', 'fetch.js'), 'utf8');
    const imported = [...esm.matchAll(/^\s*import\s[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((match) => match[1] as string);
    expect(imported.filter((specifier) => !/^\.\/chunk-[\w-]+\.js$/.test(specifier))).toEqual(['bulwark']);
    const cjs = readFileSync(join(root, 'dist', 'fetch.cjs'), 'utf8');
    expect([...cjs.matchAll(/\brequire\(['"]([^'"]+)['"]\)/g)].map((match) => match[1])).toEqual(['bulwark']);
    for (const file of ['fetch.d.ts', 'fetch.d.cts']) {
      const types = readFileSync(join(root, 'dist', file), 'utf8');
      expect([...types.matchAll(/from\s+['"]([^'"]+)['"]/g)].map((match) => match[1])).toEqual(['bulwark']);
    }
  });

  it('works with import (ESM), on the one engine of bulwark', async () => {
    const script = `import { createRequire } from 'node:module'; const require_ = createRequire(import.meta.url); const core = await import('bulwark'); const fetchEntry = await import('bulwark/fetch');${scenario}`;
    expect(await node(['--input-type=module', '--eval', script])).toEqual(expected);
  });

  it('works with require (CommonJS), on the one engine of bulwark', async () => {
    const script = `const require_ = require; const core = require('bulwark'); const fetchEntry = require('bulwark/fetch'); (async () => {${scenario}})();`;
    expect(await node(['--input-type=commonjs', '--eval', script])).toEqual(expected);
  });
});
