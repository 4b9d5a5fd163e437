/**
 * The store adapter of bulwark/redis with scripted clients (no server): which client method a
 * script goes through and with which arguments, for each client family; the EVAL fallback on
 * NOSCRIPT and nothing else; the store's timeout and its late answers; and the errors it
 * rejects with (class and whole message).
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isRefusal } from '../../src/index.js';
import { RedisStoreError, runScript, runnerOf, type Script } from '../../src/redis/store.js';

const SOURCE = 'return redis.call("GET", KEYS[1])';
const SHA = createHash('sha1').update(SOURCE).digest('hex');
const script = (): Script => ({ source: SOURCE, sha: undefined });
/** A script whose SHA-1 is known already: the call goes to the client in the same turn (timing tests). */
const hashed = (): Script => ({ source: SOURCE, sha: SHA });

afterEach(() => {
  vi.useRealTimers();
});

describe('runnerOf: the client, recognised by shape', () => {
  it('ioredis / iovalkey: evalsha(sha, numKeys, ...keys, ...args), eval(source, numKeys, ...) on NOSCRIPT', async () => {
    const calls: unknown[][] = [];
    const client = {
      evalsha: async (...a: unknown[]) => {
        calls.push(['evalsha', ...a]);
        throw new Error('NOSCRIPT No matching script. Please use EVAL.');
      },
      eval: async (...a: unknown[]) => {
        calls.push(['eval', ...a]);
        return 'answer';
      },
    };
    const s = script();
    expect(await runScript(runnerOf('Owner', client), s, ['k1', 'k2'], ['a1'], 1_000, 'Owner')).toBe('answer');
    expect(calls).toEqual([
      ['evalsha', SHA, 2, 'k1', 'k2', 'a1'],
      ['eval', SOURCE, 2, 'k1', 'k2', 'a1'],
    ]);
    // The SHA-1 is computed once and kept on the script.
    expect(s.sha).toBe(SHA);
  });

  it('node-redis: evalSha(sha, { keys, arguments }), eval(source, { keys, arguments }) on NOSCRIPT', async () => {
    const calls: unknown[][] = [];
    const client = {
      evalSha: async (...a: unknown[]) => {
        calls.push(['evalSha', ...a]);
        throw new Error('NOSCRIPT No matching script');
      },
      eval: async (...a: unknown[]) => {
        calls.push(['eval', ...a]);
        return 7;
      },
    };
    expect(await runScript(runnerOf('Owner', client), script(), ['k'], ['x', 'y'], 1_000, 'Owner')).toBe(7);
    expect(calls).toEqual([
      ['evalSha', SHA, { keys: ['k'], arguments: ['x', 'y'] }],
      ['eval', SOURCE, { keys: ['k'], arguments: ['x', 'y'] }],
    ]);
  });

  it('node-redis cluster: sendCommand routed by the first key, EVALSHA then EVAL on NOSCRIPT (evalSha and eval unused)', async () => {
    const calls: unknown[][] = [];
    const unused = () => Promise.reject(new Error('must not be called'));
    const client = {
      evalSha: unused,
      eval: unused,
      getSlotMaster: () => undefined,
      sendCommand: async (...a: unknown[]) => {
        calls.push(a);
        if ((a[2] as string[])[0] === 'EVALSHA') throw new Error('NOSCRIPT No matching script');
        return 'ok';
      },
    };
    expect(await runScript(runnerOf('Owner', client), script(), ['{t}:a', '{t}:b'], ['1'], 1_000, 'Owner')).toBe('ok');
    expect(calls).toEqual([
      ['{t}:a', false, ['EVALSHA', SHA, '2', '{t}:a', '{t}:b', '1']],
      ['{t}:a', false, ['EVAL', SOURCE, '2', '{t}:a', '{t}:b', '1']],
    ]);
  });

  it('a node-redis client, with sendCommand but no getSlotMaster or with no sendCommand, goes by evalSha, not as a cluster', async () => {
    for (const extra of [{ sendCommand: async () => 'routed' }, { getSlotMaster: () => undefined }]) {
      const calls: string[] = [];
      const client = { evalSha: async () => (calls.push('evalSha'), 'direct'), eval: async () => 'eval', ...extra };
      expect(await runScript(runnerOf('Owner', client), script(), ['k'], [], 1_000, 'Owner')).toBe('direct');
      expect(calls).toEqual(['evalSha']);
    }
  });

  it.each<[string, unknown, string]>([
    ['undefined', undefined, 'undefined'],
    ['null', null, 'null'],
    ['a string', 'redis://localhost', '"redis://localhost"'],
    ['a function', Object.assign(() => {}, { evalsha() {}, eval() {} }), 'a function'],
    ['evalsha without eval', { evalsha: () => {} }, 'an object'],
    ['eval without evalsha', { eval: () => {} }, 'an object'],
    ['evalSha without eval', { evalSha: () => {}, getSlotMaster: () => {} }, 'an object'],
    ['evalsha not a function', { evalsha: 1, eval: () => {} }, 'an object'],
    ['eval not a function', { evalSha: () => {}, eval: 'x' }, 'an object'],
  ])('%s is refused with a TypeError naming what a client must be', (_, client, shown) => {
    expect(() => runnerOf('RedisThing', client)).toThrow(
      new TypeError(`RedisThing client must be an ioredis, iovalkey or node-redis (v4+) client or cluster (with evalsha/evalSha and eval), got ${shown}`),
    );
  });
});

describe('runScript: failures and the timeout', () => {
  function scripted(evalsha: (...a: unknown[]) => Promise<unknown>, evalFn: (...a: unknown[]) => Promise<unknown> = async () => 'by eval') {
    const calls: string[] = [];
    return {
      calls,
      run: runnerOf('Owner', {
        evalsha: (...a: unknown[]) => (calls.push('evalsha'), evalsha(...a)),
        eval: (...a: unknown[]) => (calls.push('eval'), evalFn(...a)),
      }),
    };
  }

  it('an error other than NOSCRIPT is not retried by EVAL: a RedisStoreError (a refusal) with the client\'s message and the error as cause', async () => {
    const cause = new Error('READONLY You can\'t write against a read only replica.');
    const c = scripted(() => Promise.reject(cause));
    const error = await runScript(c.run, script(), ['k'], [], 1_000, 'Owner').catch((e: unknown) => e);
    expect(error).toEqual(new RedisStoreError('Owner: Redis failed: READONLY You can\'t write against a read only replica.'));
    expect(error).toBeInstanceOf(RedisStoreError);
    expect((error as RedisStoreError).name).toBe('RedisStoreError');
    expect((error as RedisStoreError).cause).toBe(cause);
    expect(isRefusal(error)).toBe(true);
    expect(c.calls).toEqual(['evalsha']);
  });

  it('a thrown value that is not an Error is shown in the message; a NOSCRIPT string (not an error object) is not retried', async () => {
    for (const [thrown, shown] of [
      ['NOSCRIPT', '"NOSCRIPT"'],
      [null, 'null'],
      [{ code: 'ECONNRESET' }, 'an object'],
    ] as const) {
      const c = scripted(() => Promise.reject(thrown));
      const error = await runScript(c.run, script(), ['k'], [], 1_000, 'Owner').catch((e: unknown) => e);
      expect(error).toEqual(new RedisStoreError(`Owner: Redis failed: ${shown}`));
      expect((error as RedisStoreError).cause).toBe(thrown);
      expect(c.calls).toEqual(['evalsha']);
    }
  });

  it('an error object whose message has NOSCRIPT (not an Error instance) is retried by EVAL; EVAL\'s own failure is the one reported', async () => {
    const c = scripted(
      () => Promise.reject({ message: 'NOSCRIPT No matching script' }),
      () => Promise.reject(new Error('OOM command not allowed')),
    );
    const error = await runScript(c.run, script(), ['k'], [], 1_000, 'Owner').catch((e: unknown) => e);
    expect(error).toEqual(new RedisStoreError('Owner: Redis failed: OOM command not allowed'));
    expect(c.calls).toEqual(['evalsha', 'eval']);
  });

  it('no answer within timeout: a RedisStoreError naming the timeout; the late answer goes to onLate; no timer is left', async () => {
    vi.useFakeTimers();
    let answer!: (value: unknown) => void;
    const c = scripted(() => new Promise((resolve) => (answer = resolve)));
    const late: unknown[] = [];
    const settled = runScript(c.run, hashed(), ['k'], [], 50, 'Owner', (value) => late.push(value)).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(49);
    expect(late).toEqual([]);
    let done = false;
    void settled.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await settled;
    expect(error).toEqual(new RedisStoreError('Owner: Redis did not answer within 50 ms'));
    expect(error).toBeInstanceOf(RedisStoreError);
    expect((error as RedisStoreError).cause).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    answer([1, 0]);
    await vi.advanceTimersByTimeAsync(0);
    expect(late).toEqual([[1, 0]]);
  });

  it('a late failure after the timeout is dropped (no unhandled rejection), with or without onLate', async () => {
    vi.useFakeTimers();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const onLate of [undefined, (value: unknown) => unhandled.push(['late', value])]) {
        let fail!: (error: Error) => void;
        const c = scripted(() => new Promise((_, reject) => (fail = reject)));
        const settled = runScript(c.run, hashed(), ['k'], [], 10, 'Owner', onLate).catch((e: unknown) => e);
        await vi.advanceTimersByTimeAsync(10);
        expect(await settled).toEqual(new RedisStoreError('Owner: Redis did not answer within 10 ms'));
        fail(new Error('late failure'));
        // Node reports a rejection left unhandled once the microtasks drain, before the next macrotask.
        vi.useRealTimers();
        await new Promise((resolve) => setImmediate(resolve));
        vi.useFakeTimers();
      }
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('an answer in time clears the timer and does not reach onLate', async () => {
    vi.useFakeTimers();
    const late: unknown[] = [];
    const c = scripted(async () => 'fast');
    expect(await runScript(c.run, hashed(), ['k'], [], 1_000, 'Owner', (value) => late.push(value))).toBe('fast');
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(late).toEqual([]);
  });
});
