import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { satisfies } from 'semver';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const entries = ['index', 'health', 'prometheus', 'otel', 'chaos', 'fetch', 'redis'];
const built = entries.flatMap((entry) => [`dist/${entry}.js`, `dist/${entry}.cjs`, `dist/${entry}.d.ts`, `dist/${entry}.d.cts`]);
/** The subpath entries and one export each must have. */
const subpaths = [
  ['bulwark/health', 'HealthMonitor'],
  ['bulwark/prometheus', 'renderPrometheus'],
  ['bulwark/otel', 'registerOpenTelemetryMetrics'],
  ['bulwark/chaos', 'chaosFault'],
  ['bulwark/fetch', 'resilientFetch'],
  ['bulwark/redis', 'RedisRateLimiter'],
] as const;
/**
 * The subpaths that use the core through types only; bulwark/chaos and bulwark/fetch extend
 * LayerPolicy, so they import 'bulwark' itself (test/chaos/package.test.ts, test/fetch/package.test.ts).
 */
const typeOnlySubpaths = subpaths.filter(([subpath]) => subpath !== 'bulwark/chaos' && subpath !== 'bulwark/fetch' && subpath !== 'bulwark/redis');

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

  it.each(subpaths)('loads %s with import and with require, each from its own file', async (subpath, name) => {
    const file = subpath.split('/')[1];
    const esm = JSON.parse(
      await node(['--input-type=module', '--eval', `const m = await import('${subpath}'); console.log(JSON.stringify({ type: typeof m.${name}, resolved: import.meta.resolve('${subpath}') }))`]),
    ) as { type: string; resolved: string };
    expect(esm.type).toBe('function');
    expect(esm.resolved).toMatch(new RegExp(`/dist/${file}\\.js$`));
    const cjs = JSON.parse(
      await node(['--input-type=commonjs', '--eval', `const m = require('${subpath}'); console.log(JSON.stringify({ type: typeof m.${name}, resolved: require.resolve('${subpath}') }))`]),
    ) as { type: string; resolved: string };
    expect(cjs.type).toBe('function');
    expect(cjs.resolved).toMatch(new RegExp(`[\\\\/]dist[\\\\/]${file}\\.cjs$`));
  });

  it.each(typeOnlySubpaths.map(([subpath]) => subpath.split('/')[1] as string))('builds dist/%s with no copy of the core and no node: module, importing only chunks it shares with the other subpaths', (file) => {
    const esm = readFileSync(new URL(`../dist/${file}.js`, import.meta.url), 'utf8');
    const imported = [...esm.matchAll(/^\s*import\s[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((match) => match[1]);
    for (const specifier of imported) expect(specifier).toMatch(/^\.\/chunk-[\w-]+\.js$/);
    for (const specifier of imported) {
      const chunk = readFileSync(new URL(`../dist/${(specifier as string).slice(2)}`, import.meta.url), 'utf8');
      expect(chunk).not.toMatch(/class CircuitBreaker\b|\bfunction compose\b/);
    }
    const cjs = readFileSync(new URL(`../dist/${file}.cjs`, import.meta.url), 'utf8');
    expect(cjs).not.toMatch(/\brequire\(/);
    // The code, not its doc comments: an @example may show `import … from 'node:timers/promises'`.
    for (const code of [esm, cjs].map((text) => text.replace(/\/\*[\s\S]*?\*\//g, ''))) {
      expect(code).not.toMatch(/class CircuitBreaker\b|\bfunction compose\b/);
      expect(code).not.toMatch(/['"]node:/);
    }
  });

  it('keeps the core free of the subpaths', () => {
    const core = readFileSync(new URL('../dist/index.js', import.meta.url), 'utf8');
    expect(core).not.toMatch(/HealthMonitor|renderPrometheus|registerOpenTelemetryMetrics|chaosFault|seededRandom|resilientFetch/);
  });

  it('has types for both formats, listed first in each exports condition', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, Record<string, Record<string, string>>>;
    };
    for (const [key, entry] of [['.', 'index'], ['./health', 'health'], ['./prometheus', 'prometheus'], ['./otel', 'otel'], ['./chaos', 'chaos'], ['./fetch', 'fetch'], ['./redis', 'redis']] as const) {
      const conditions = manifest.exports[key];
      expect(Object.keys(conditions?.['import'] ?? {})[0]).toBe('types');
      expect(Object.keys(conditions?.['require'] ?? {})[0]).toBe('types');
      expect(conditions?.['import']?.['types']).toBe(`./dist/${entry}.d.ts`);
      expect(conditions?.['require']?.['types']).toBe(`./dist/${entry}.d.cts`);
    }
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

  it("names its repository, so npm's page turns the README's relative links into links to it, and each names a file that exists", () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, { url?: string } | string | undefined>;
    const repository = manifest['repository'] as { url?: string } | undefined;
    expect(repository?.url).toMatch(/^git\+https:\/\/github\.com\/[\w.-]+\/[\w.-]+\.git$/);
    expect(manifest['homepage']).toMatch(/^https:\/\/github\.com\//);
    expect((manifest['bugs'] as { url?: string } | undefined)?.url).toMatch(/^https:\/\/github\.com\/.+\/issues$/);
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const relative = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((match) => match[1] as string).filter((target) => !/^[a-z]+:/.test(target));
    expect(relative.length).toBeGreaterThan(0);
    for (const target of relative) expect(existsSync(new URL(`../${target}`, import.meta.url)), target).toBe(true);
  });

  it('installs no development dependency that refuses a Node.js version the package supports (npm ci warns EBADENGINE)', () => {
    const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[] }> };
    const refusing = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && typeof entry.engines === 'object' && !Array.isArray(entry.engines) && typeof entry.engines.node === 'string')
      .filter(([, entry]) => ['20.19.0', '22.13.0', '24.0.0'].some((version) => !satisfies(version, (entry.engines as { node: string }).node)))
      .map(([path, entry]) => `${path} (node ${(entry.engines as { node: string }).node})`);
    expect(refusing).toEqual([]);
  });

  it('declares no runtime dependencies', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(manifest['dependencies']).toBeUndefined();
    expect(manifest['name']).toBe('bulwark');
    expect(manifest['sideEffects']).toBe(false);
  });
});
