/**
 * examples/migration/opossum.ts: the same breaker written with opossum and with bulwark, run
 * against the same scripted service on fake timers. The first block shows where they behave
 * the same, the second where docs/migrating-from-opossum.md says they differ.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import OpossumBreaker from 'opossum';
import { CircuitBreaker, compose, withTimeout } from 'bulwark';
import { ScriptedStock, UNKNOWN, bulwarkStack, opossumStack } from './opossum.js';

const opened: OpossumBreaker[] = [];

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  for (const breaker of opened.splice(0)) breaker.shutdown();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function opossum(service: ScriptedStock) {
  const stack = opossumStack(service.get);
  opened.push(stack.breaker);
  return stack;
}

/** Settles `promise` by running the timers it waits for. */
async function settle<T>(promise: Promise<T>, ms = 2_000): Promise<T> {
  const outcome = promise.then(
    (value) => value,
    (error: unknown) => error as T,
  );
  await vi.advanceTimersByTimeAsync(ms);
  return outcome;
}

const isOpen = (stack: ReturnType<typeof opossumStack> | ReturnType<typeof bulwarkStack>): boolean =>
  stack.breaker instanceof CircuitBreaker ? stack.breaker.state === 'open' : stack.breaker.opened;

describe('opossum and bulwark behave the same', () => {
  it.each([['opossum'], ['bulwark']] as const)('%s: a healthy call answers with the value', async (name) => {
    const service = new ScriptedStock(['ok']);
    const stack = name === 'opossum' ? opossum(service) : bulwarkStack(service.get);
    expect(await settle(stack.get('sku-1'))).toEqual({ status: 200, sku: 'sku-1', count: 7 });
  });

  it('a call that hangs answers with the fallback after 1 s, and a timeout event fires', async () => {
    const a = opossum(new ScriptedStock(['hang']));
    const b = bulwarkStack(new ScriptedStock(['hang']).get);
    const timeouts: string[] = [];
    a.breaker.on('timeout', () => timeouts.push('opossum'));
    b.timeout.on('timeout', () => timeouts.push('bulwark'));
    const started = Date.now();
    const answers = Promise.all([a.get('sku-1'), b.get('sku-1')]);
    await vi.advanceTimersByTimeAsync(999);
    expect(timeouts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(await answers).toEqual([UNKNOWN, UNKNOWN]);
    expect(Date.now() - started).toBe(1_000);
    expect(timeouts.sort()).toEqual(['bulwark', 'opossum']);
  });

  it('6 failures in 10 calls open both at the tenth; then the fallback answers without a call, and a trial after 10 s closes them', async () => {
    const script = [...Array<'ok'>(4).fill('ok'), ...Array<'error'>(6).fill('error'), 'ok'] as const;
    const serviceA = new ScriptedStock(script);
    const serviceB = new ScriptedStock(script);
    const a = opossum(serviceA);
    const b = bulwarkStack(serviceB.get);
    for (let i = 0; i < 10; i++) {
      expect([isOpen(a), isOpen(b)]).toEqual([false, false]);
      await settle(a.get('sku-1'), 20);
      await settle(b.get('sku-1'), 20);
    }
    expect([isOpen(a), isOpen(b)]).toEqual([true, true]);
    expect(await settle(Promise.all([a.get('sku-1'), b.get('sku-1')]))).toEqual([UNKNOWN, UNKNOWN]);
    expect([serviceA.calls, serviceB.calls]).toEqual([10, 10]);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(await settle(Promise.all([a.get('sku-1'), b.get('sku-1')]))).toEqual([
      { status: 200, sku: 'sku-1', count: 7 },
      { status: 200, sku: 'sku-1', count: 7 },
    ]);
    expect([a.breaker.closed, b.breaker.state]).toEqual([true, 'closed']);
  });
});

describe('where opossum and bulwark differ', () => {
  it('errorThresholdPercentage: 50 opens above 50 %; failureRate.threshold: 0.5 opens at 50 %', async () => {
    const script = [...Array<'ok'>(5).fill('ok'), ...Array<'error'>(5).fill('error')] as const;
    const a = opossum(new ScriptedStock(script));
    const b = bulwarkStack(new ScriptedStock(script).get);
    for (let i = 0; i < 10; i++) {
      await settle(a.get('sku-1'), 20);
      await settle(b.get('sku-1'), 20);
    }
    expect(a.breaker.opened).toBe(false);
    expect(b.breaker.state).toBe('open');
  });

  it('with its defaults (volumeThreshold 0) opossum opens on the first failure; a default bulwark breaker needs 5 in a row', async () => {
    const a = new OpossumBreaker(() => Promise.reject(new Error('down')));
    opened.push(a);
    const b = new CircuitBreaker();
    await settle(a.fire());
    await settle(b.execute(() => Promise.reject(new Error('down'))));
    expect(a.opened).toBe(true);
    expect(b.state).toBe('closed');
  });

  it("capacity: opossum counts the calls its semaphore refuses as failures and opens on a healthy service; bulwark's bulkhead refusals are not counted", async () => {
    const serviceA = new ScriptedStock(['ok']);
    const serviceB = new ScriptedStock(['ok']);
    const a = opossum(serviceA);
    const b = bulwarkStack(serviceB.get);
    const answers = await settle(Promise.all([...Array(30)].flatMap(() => [a.get('sku-1'), b.get('sku-1')])));
    expect(answers.filter((answer) => answer === UNKNOWN)).toHaveLength(40); // 20 refused by each
    expect([serviceA.calls, serviceB.calls]).toEqual([10, 10]);
    // 10 calls run; refusals by the semaphore count as failures until they pass 50 % of the
    // calls fired (11 of 21), then the open circuit refuses the rest.
    expect(a.breaker.stats.failures).toBe(11);
    expect(a.breaker.stats.semaphoreRejections).toBe(11);
    expect(a.breaker.opened).toBe(true);
    expect(b.breaker.stats().failures).toBe(0);
    expect(b.breaker.state).toBe('closed');
  });

  it('a timeout stops nothing in opossum without an abortController; bulwark aborts the call\'s own signal', async () => {
    const serviceA = new ScriptedStock(['hang']);
    const serviceB = new ScriptedStock(['hang']);
    await settle(Promise.all([opossum(serviceA).get('sku-1'), bulwarkStack(serviceB.get).get('sku-1')]));
    expect(serviceA.aborted).toBe(0); // still running
    expect(serviceB.aborted).toBe(1);
  });

  it("opossum's abortController is one for every call: after a timeout, later calls start aborted; bulwark gives each call its own signal", async () => {
    const service = new ScriptedStock(['hang', 'ok']);
    const controller = new AbortController();
    const a = new OpossumBreaker((sku: string) => service.get(sku, controller.signal), { timeout: 1_000, abortController: controller, volumeThreshold: 100 });
    opened.push(a);
    await settle(a.fire('sku-1'));
    const next = await settle(a.fire('sku-2'));
    expect(next).toBeInstanceOf(DOMException); // aborted before it started
    expect(service.aborted).toBe(2);

    const serviceB = new ScriptedStock(['hang', 'ok']);
    const b = compose(withTimeout(1_000));
    await settle(b.execute(({ signal }) => serviceB.get('sku-1', signal)));
    expect(await settle(b.execute(({ signal }) => serviceB.get('sku-2', signal)))).toMatchObject({ status: 200 });
    expect(serviceB.aborted).toBe(1);
  });

  it('a listener that throws: opossum counts a failure and answers with the fallback; bulwark reports it and answers with the value', async () => {
    const report = vi.spyOn(console, 'error').mockImplementation(() => {});
    const a = opossum(new ScriptedStock(['ok']));
    a.breaker.on('success', () => {
      throw new Error('metrics client down');
    });
    const b = bulwarkStack(new ScriptedStock(['ok']).get);
    b.breaker.on('success', () => {
      throw new Error('metrics client down');
    });
    expect(await settle(a.get('sku-1'))).toBe(UNKNOWN);
    expect(a.breaker.stats.failures).toBe(1);
    expect(await settle(b.get('sku-1'))).toEqual({ status: 200, sku: 'sku-1', count: 7 });
    expect(report).toHaveBeenCalledWith(expect.any(String), expect.objectContaining({ message: 'metrics client down' }));
  });

  it('an idle opossum breaker holds timers until shutdown(); a bulwark stack holds none', () => {
    expect(vi.getTimerCount()).toBe(0);
    const a = new OpossumBreaker(() => Promise.resolve('ok'));
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    a.shutdown();
    expect(vi.getTimerCount()).toBe(0);
    bulwarkStack(new ScriptedStock(['ok']).get);
    expect(vi.getTimerCount()).toBe(0);
  });
});
