/**
 * The shared breaker's script as its users meet it: the keys it keeps in Redis (the state hash,
 * and trial leases only while a trial runs), and an answer that is not the script's (another
 * script under that SHA, a proxy) refused with the class and whole message, never taken as state.
 */
import { describe, expect, it, vi } from 'vitest';
import { RedisCircuitBreaker } from '../../src/redis/index.js';
import { settle, useRedisServer } from './clients.js';

const { client } = useRedisServer();
const ok = (): string => 'ran';
const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RedisCircuitBreaker script', () => {
  it('keeps its state in {bulwark:<name>}:breaker and a half-open trial\'s lease in {bulwark:<name>}:trials, removed when the trial closes it', async () => {
    const raw = await client('ioredis');
    const breaker = new RedisCircuitBreaker((await client('ioredis')).client, { name: 'keys', failureThreshold: 1, recoveryTimeout: 20 });
    expect(breaker.key).toBe('{bulwark:keys}:breaker');
    await settle(breaker.execute(boom));
    await vi.waitFor(() => expect(breaker.state).toBe('open'), { interval: 2 });
    expect(await raw.command('HGET', '{bulwark:keys}:breaker', 'state')).toBe('open');
    await tick(30);
    let release!: () => void;
    const trial = breaker.execute(() => new Promise<string>((resolve) => (release = () => resolve('recovered'))));
    await vi.waitFor(() => expect(release).toBeTypeOf('function'), { interval: 2 });
    expect(await raw.command('ZCARD', '{bulwark:keys}:trials')).toBe(1);
    release();
    expect(await trial).toBe('recovered');
    await vi.waitFor(() => expect(breaker.state).toBe('closed'), { interval: 2 });
    expect(await raw.command('EXISTS', '{bulwark:keys}:trials')).toBe(0);
    expect(await raw.command('HGET', '{bulwark:keys}:breaker', 'state')).toBe('closed');
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['a number', 5],
    ['13 entries', [1, 'closed', 0, 0, 0, 0, 0, 0, 0, 0, 0, '', 0]],
    ['an unknown state', [1, 'opened', 0, 0, 0, 0, 0, 0, 0, 0, 0, '', 0, -1]],
  ])('an answer that is not the script\'s (%s) is refused with a TypeError naming it; calls are decided locally', async (_, answer) => {
    const scripted = async () => answer;
    const breaker = new RedisCircuitBreaker({ evalsha: scripted, eval: scripted } as never, { name: 'malformed' });
    expect(await breaker.execute(ok)).toBe('ran');
    const refused = (await settle(breaker.isolate())) as { error: Error };
    expect(refused.error).toBeInstanceOf(TypeError);
    expect(refused.error.message).toBe(`RedisCircuitBreaker: unexpected answer from Redis: ${JSON.stringify(answer)}`);
  });
});
