/**
 * examples/migration/p-retry.ts: the same client written with p-limit, p-retry and p-timeout
 * and with bulwark, run against the same scripted service on fake timers. The first block
 * shows where they behave the same, the second where docs/migrating-from-p-retry.md says they
 * differ.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pRetry from 'p-retry';
import pTimeout, { TimeoutError as PTimeoutError } from 'p-timeout';
import { Bulkhead, isBulkheadRejectedError, isTimeoutError, retryWithBackoff, withTimeout } from 'bulwark';
import { NotFoundError, ScriptedUsers, bulwarkClient, pRetryClient } from './p-retry.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const both = [
  ['p-retry', pRetryClient],
  ['bulwark', bulwarkClient],
] as const;

/** Settles `promise` by running the timers it waits for; never rejects (the outcome is returned). */
async function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  const outcome = promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  await vi.runAllTimersAsync();
  return outcome;
}

describe('p-retry and bulwark behave the same', () => {
  it.each(both)('%s: a blip is retried after 100 ms and the second answer returned', async (_name, build) => {
    const service = new ScriptedUsers(['error', 'ok']);
    const started = Date.now();
    expect(await settle(build(service.get).get('42'))).toEqual({ value: { id: '42', name: 'user 42' } });
    expect(service.calls).toBe(2);
    expect(Date.now() - started).toBe(10 + 100 + 10);
  });

  it.each(both)('%s: retries: 3 is maxRetries: 3, four calls 100, 200 and 400 ms apart, then the last error', async (_name, build) => {
    const service = new ScriptedUsers(['error']);
    const started = Date.now();
    const { error } = await settle(build(service.get).get('42'));
    expect(error).toMatchObject({ message: 'user service failed for 42' });
    expect(service.calls).toBe(4);
    expect(Date.now() - started).toBe(4 * 10 + 100 + 200 + 400);
  });

  it.each(both)('%s: a NotFoundError is not retried and reaches the caller as it was thrown', async (_name, build) => {
    const service = new ScriptedUsers(['not-found']);
    const { error } = await settle(build(service.get).get('42'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(service.calls).toBe(1);
  });

  it.each(both)('%s: an attempt that hangs is cut after 1 s and retried', async (_name, build) => {
    const service = new ScriptedUsers(['hang', 'ok']);
    const started = Date.now();
    expect((await settle(build(service.get).get('42'))).value).toEqual({ id: '42', name: 'user 42' });
    expect(Date.now() - started).toBe(1_000 + 100 + 10);
  });

  it('at most 5 calls run at once, the others wait: activeCount / pendingCount are active / queued', async () => {
    const a = pRetryClient(new ScriptedUsers(['ok']).get);
    const b = bulwarkClient(new ScriptedUsers(['ok']).get);
    const calls = [...Array(8)].flatMap((_, i) => [a.get(String(i)), b.get(String(i))]);
    await vi.advanceTimersByTimeAsync(0);
    expect([a.limit.activeCount, a.limit.pendingCount]).toEqual([5, 3]);
    expect([b.bulkhead.active, b.bulkhead.queued]).toEqual([5, 3]);
    await settle(Promise.all(calls));
  });
});

describe('where p-retry and bulwark differ', () => {
  it("p-timeout cannot stop the work; bulwark aborts the attempt's signal", async () => {
    const serviceA = new ScriptedUsers(['hang', 'ok']);
    const serviceB = new ScriptedUsers(['hang', 'ok']);
    await settle(pRetryClient(serviceA.get).get('42'));
    await settle(bulwarkClient(serviceB.get).get('42'));
    expect(serviceA.aborted).toBe(0); // the first attempt still runs
    expect(serviceB.aborted).toBe(1);
  });

  it('a TypeError that is not a network error: p-retry gives up at once, bulwark retries it (retryOn decides)', async () => {
    const serviceA = new ScriptedUsers(['type-error']);
    const serviceB = new ScriptedUsers(['type-error']);
    await settle(pRetryClient(serviceA.get).get('42'));
    await settle(bulwarkClient(serviceB.get).get('42'));
    expect([serviceA.calls, serviceB.calls]).toEqual([1, 4]);
  });

  it("onFailedAttempt runs for every failure, the last one too; bulwark's retry event runs before each retry and giveUp once", async () => {
    const failed: number[] = [];
    await settle(pRetry(() => Promise.reject(new Error('down')), { retries: 3, minTimeout: 0, onFailedAttempt: ({ attemptNumber }) => void failed.push(attemptNumber) }));
    const retried: number[] = [];
    const gaveUp: number[] = [];
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 0 });
    retry.on('retry', ({ attempt }) => retried.push(attempt));
    retry.on('giveUp', ({ attempts }) => gaveUp.push(attempts));
    await settle(retry.execute(() => Promise.reject(new Error('down'))));
    expect(failed).toEqual([1, 2, 3, 4]);
    expect(retried).toEqual([1, 2, 3]);
    expect(gaveUp).toEqual([4]);
  });

  it('a callback that throws: onFailedAttempt ends the call with its error; a bulwark listener is reported and the call goes on', async () => {
    const report = vi.spyOn(console, 'error').mockImplementation(() => {});
    let callsA = 0;
    const a = await settle(
      pRetry(() => (++callsA === 1 ? Promise.reject(new Error('blip')) : Promise.resolve('ok')), {
        minTimeout: 0,
        onFailedAttempt: () => {
          throw new Error('metrics client down');
        },
      }),
    );
    const retry = retryWithBackoff({ baseDelay: 0 });
    retry.on('retry', () => {
      throw new Error('metrics client down');
    });
    let callsB = 0;
    const b = await settle(retry.execute(() => (++callsB === 1 ? Promise.reject(new Error('blip')) : Promise.resolve('ok'))));
    expect(a.error).toMatchObject({ message: 'metrics client down' });
    expect(callsA).toBe(1);
    expect(b.value).toBe('ok');
    expect(callsB).toBe(2);
    expect(report).toHaveBeenCalledWith(expect.any(String), expect.objectContaining({ message: 'metrics client down' }));
  });

  it("a caller's abort during an attempt: both reject with its reason, p-retry once the attempt settled, bulwark at once", async () => {
    const reason = new Error('request cancelled');
    const outcomes: Record<string, number> = {};
    for (const [name, build] of both) {
      const controller = new AbortController();
      const started = Date.now();
      const call = build(new ScriptedUsers(['slow']).get)
        .get('42', controller.signal)
        .catch((error: unknown) => {
          expect(error).toBe(reason);
          outcomes[name] = Date.now() - started;
        });
      await vi.advanceTimersByTimeAsync(50);
      controller.abort(reason);
      await settle(call);
    }
    expect(outcomes).toEqual({ 'p-retry': 500, bulwark: 50 });
  });

  it('p-limit holds its slot through the backoff sleeps; the innermost bulkhead frees it while a retry sleeps', async () => {
    const script = [...Array<'error'>(5).fill('error'), 'ok'] as const;
    const answeredAt: Record<string, number> = {};
    for (const [name, build] of both) {
      const client = build(new ScriptedUsers(script).get);
      const started = Date.now();
      const failingOnce = [...Array(5)].map((_, i) => client.get(String(i)));
      const sixth = client.get('6').then(() => (answeredAt[name] = Date.now() - started));
      await settle(Promise.all([...failingOnce, sixth]));
    }
    expect(answeredAt).toEqual({ 'p-retry': 10 + 100 + 10 + 10, bulwark: 10 + 10 });
  });

  it('a Bulkhead queues nothing by default (maxQueue: 0); p-limit queues without bound', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    void bulkhead.execute(() => new Promise(() => {}));
    expect(isBulkheadRejectedError(await bulkhead.execute(() => 'second').catch((error: unknown) => error))).toBe(true);
  });

  it("p-timeout's TimeoutError and bulwark's are different classes: isTimeoutError recognises only bulwark's", async () => {
    const fromPTimeout = (await settle(pTimeout(new Promise(() => {}), { milliseconds: 1_000 }))).error;
    const fromBulwark = (await settle(withTimeout(1_000).execute(() => new Promise(() => {})))).error;
    expect(fromPTimeout).toBeInstanceOf(PTimeoutError);
    expect(isTimeoutError(fromPTimeout)).toBe(false);
    expect(isTimeoutError(fromBulwark)).toBe(true);
    expect(fromBulwark).not.toBeInstanceOf(PTimeoutError);
  });

  it('a thrown value that is not an Error: p-retry replaces it with a TypeError and stops; bulwark retries it and rejects with it unchanged', async () => {
    let callsA = 0;
    const a = await settle(pRetry(() => Promise.reject(`busy ${++callsA}`), { retries: 3, minTimeout: 0 }));
    let callsB = 0;
    const b = await settle(retryWithBackoff({ maxRetries: 3, baseDelay: 0 }).execute(() => Promise.reject(`busy ${++callsB}`)));
    expect(callsA).toBe(1);
    expect(a.error).toBeInstanceOf(TypeError);
    expect(callsB).toBe(4);
    expect(b.error).toBe('busy 4');
  });
});
