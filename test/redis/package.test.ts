/**
 * bulwark/redis as users install it: built, packed, extracted into a fresh project. Its
 * policies extend the core's LayerPolicy and fall back to the core's RateLimiter and Bulkhead,
 * so the entry takes the core from `bulwark` itself and never carries a copy of the engine.
 * The installed project has no Redis client: a client of the right shape whose every command
 * fails stands in, which also shows the fail-open path working from the tarball. Needs `dist/`
 * built (`npx tsup`; `npm test` builds before vitest runs).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked, root } from '../fixtures/packed.js';

const run = promisify(execFile);
const built = ['redis.js', 'redis.cjs', 'redis.d.ts', 'redis.d.cts'].map((file) => join(root, 'dist', file));

// An ioredis-shaped client whose commands all fail: the limiter and the bulkhead go on with
// their local stand-ins, and say so.
const scenario = `
  const down = { evalsha: () => Promise.reject(new Error('connection refused')), eval: () => Promise.reject(new Error('connection refused')) };
  const limiter = new redisEntry.RedisRateLimiter(down, { name: 'partner', rate: 2 });
  const bulkhead = new redisEntry.RedisBulkhead(down, { name: 'pool', maxConcurrent: 1 });
  const events = [];
  limiter.on('storeDown', () => events.push('limiter storeDown'));
  bulkhead.on('storeDown', () => events.push('bulkhead storeDown'));
  const stack = core.compose(core.withFallback('fallback'), new core.CircuitBreaker(), limiter, bulkhead);
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await stack.execute(() => 'ran'));
  console.log(JSON.stringify({
    oneEngine: limiter instanceof core.LayerPolicy && bulkhead instanceof core.LayerPolicy,
    answers,
    events: events.sort(),
  }));
`;
// Rate 2: two calls run, the third is refused by the local limiter and answered by the fallback.
const expected = { oneEngine: true, answers: ['ran', 'ran', 'fallback'], events: ['bulkhead storeDown', 'limiter storeDown'] };

let installed: { dir: string; remove: () => void };

beforeAll(async () => {
  const missing = built.filter((file) => !existsSync(file));
  if (missing.length > 0) throw new Error(`The built package is missing ${missing.join(', ')}: run \`npx tsup\` first`);
  installed = await installPacked();
  writeFileSync(join(installed.dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
}, 60_000);

afterAll(() => installed?.remove());

async function node(args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, args, { cwd: installed.dir, timeout: 15_000, env: { ...process.env, NODE_OPTIONS: '' } });
  return JSON.parse(stdout);
}

describe('bulwark/redis, built and installed', () => {
  it('dist/redis.* imports the core from "bulwark" and shared chunks only: no copy of the engine, no node: module', () => {
    for (const file of ['redis.js', 'redis.cjs']) {
      const code = readFileSync(join(root, 'dist', file), 'utf8');
      expect(code).not.toMatch(/class (PolicyBase|LayerPolicy|CircuitBreaker|RetryPolicy|RateLimiter|Bulkhead)\b|\bfunction compose\b|class Call\b/);
      expect(code).not.toMatch(/['"]node:/);
    }
    const esm = readFileSync(join(root, 'dist', 'redis.js'), 'utf8');
    const imported = [...esm.matchAll(/^\s*import\s[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((match) => match[1] as string);
    expect(imported.filter((specifier) => !/^\.\/chunk-[\w-]+\.js$/.test(specifier))).toEqual(['bulwark']);
    const cjs = readFileSync(join(root, 'dist', 'redis.cjs'), 'utf8');
    expect([...cjs.matchAll(/\brequire\(['"]([^'"]+)['"]\)/g)].map((match) => match[1])).toEqual(['bulwark']);
  });

  it('works with import (ESM), on the one engine of bulwark', async () => {
    const script = `const core = await import('bulwark'); const redisEntry = await import('bulwark/redis');${scenario}`;
    expect(await node(['--input-type=module', '--eval', script])).toEqual(expected);
  });

  it('works with require (CommonJS), on the one engine of bulwark', async () => {
    const script = `const core = require('bulwark'); const redisEntry = require('bulwark/redis'); (async () => {${scenario}})();`;
    expect(await node(['--input-type=commonjs', '--eval', script])).toEqual(expected);
  });
});
