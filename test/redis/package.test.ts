/**
 * bulwark/redis as users install it: built, packed, extracted into a fresh project. Its
 * policies extend the core's LayerPolicy and fall back to the core's RateLimiter and Bulkhead,
 * so the entry takes the core from `bulwark` itself and never carries a copy of the engine.
 * The installed project has no Redis client: a client of the right shape whose every command
 * fails stands in, which also shows the fail-open path working from the tarball. Needs `dist/`
 * built (`npx tsup`; `npm test` builds before vitest runs).
 */
import { describe, expect, it } from 'vitest';
import { expectCoreTakenByName, installedConsumer } from '../fixtures/subpath-package.js';


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

const { node } = installedConsumer('redis', { quiet: false });

describe('bulwark/redis, built and installed', () => {
  it('dist/redis.* imports the core from "bulwark" and shared chunks only: no copy of the engine, no node: module', () => {
    expectCoreTakenByName('redis');
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
