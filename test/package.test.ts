import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const built = ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts'];

/** Plain node in the project root (no vite, no loader), so `bulwark` resolves through the package's own exports map. */
async function node(args: string[]): Promise<string> {
  const { stdout, stderr } = await run(process.execPath, args, {
    cwd: root,
    timeout: 15_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  expect(stderr).toBe('');
  return stdout;
}

// One call recovers through retry, one is answered by the fallback, one times out; then the
// script prints what it saw and which file `bulwark` resolved to.
const scenario = (resolved: string): string => `
  const stack = b.compose(
    b.withFallback((error) => 'fallback:' + error.message),
    new b.CircuitBreaker({ failureThreshold: 5 }),
    b.retryWithBackoff({ maxRetries: 1, baseDelay: 0 }),
    b.withTimeout(1000),
    new b.Bulkhead({ maxConcurrent: 2 }),
  );
  const recovered = await stack.execute(({ attempt }) => (attempt === 1 ? Promise.reject(new Error('flaky')) : 'ok@' + attempt));
  const fellBack = await stack.execute(() => Promise.reject(new Error('down')));
  const timedOut = await b.withTimeout(5).execute(() => new Promise(() => {})).catch((error) => b.isTimeoutError(error) && error.timeout);
  console.log(JSON.stringify({ recovered, fellBack, timedOut, resolved: ${resolved} }));
`;

const expected = { recovered: 'ok@2', fellBack: 'fallback:down', timedOut: 5 };

beforeAll(() => {
  const missing = built.filter((file) => !existsSync(new URL(`../${file}`, import.meta.url)));
  if (missing.length > 0) {
    throw new Error(`The built package is missing ${missing.join(', ')}: run \`npx tsup\` first (\`npm test\` builds before vitest runs)`);
  }
});

describe('the built package', () => {
  it('works with import (ESM) through the exports map', async () => {
    const script = `const b = await import('bulwark');${scenario("import.meta.resolve('bulwark')")}`;
    const output = JSON.parse(await node(['--input-type=module', '--eval', script])) as Record<string, unknown>;
    expect(output).toMatchObject(expected);
    expect(output.resolved).toMatch(/\/dist\/index\.js$/);
  });

  it('works with require (CommonJS) through the exports map', async () => {
    const script = `const b = require('bulwark'); (async () => {${scenario("require.resolve('bulwark')")}})();`;
    const output = JSON.parse(await node(['--input-type=commonjs', '--eval', script])) as Record<string, unknown>;
    expect(output).toMatchObject(expected);
    expect(output.resolved).toMatch(/[\\/]dist[\\/]index\.cjs$/);
  });

  it('has types for both formats, listed first in each exports condition', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, Record<string, Record<string, string>>>;
    };
    const main = manifest.exports['.'];
    expect(Object.keys(main?.['import'] ?? {})[0]).toBe('types');
    expect(Object.keys(main?.['require'] ?? {})[0]).toBe('types');
    expect(main?.['import']?.['types']).toBe('./dist/index.d.ts');
    expect(main?.['require']?.['types']).toBe('./dist/index.d.cts');
  });
});

describe('what npm publishes', () => {
  it('packs only dist/, README.md, LICENSE, CHANGELOG.md and package.json', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, timeout: 30_000 });
    const [pack] = JSON.parse(stdout) as { files: { path: string }[] }[];
    const files = (pack?.files ?? []).map((file) => file.path).sort();
    const outsideDist = files.filter((file) => !file.startsWith('dist/'));
    expect(outsideDist).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
    for (const file of built) expect(files).toContain(file);
    expect(files.filter((file) => /(^|\/)(test|tests|__tests__)\/|\.test(-d)?\.|\.spec\./.test(file))).toEqual([]);
    expect(files.filter((file) => file.endsWith('.map') && !file.startsWith('dist/'))).toEqual([]);
  });

  it('declares no runtime dependencies', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(manifest['dependencies']).toBeUndefined();
    expect(manifest['name']).toBe('bulwark');
    expect(manifest['sideEffects']).toBe(false);
  });
});
