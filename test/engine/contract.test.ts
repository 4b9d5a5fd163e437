import { spawn } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  CircuitOpenError,
  TimeoutError,
  compose,
  isTimeoutError,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type Policy,
} from '../../src/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { collectingUnhandledRejections, deferred, flush, hang, hangUntilAborted, reasonOf, settle, type Settling } from '../fixtures/promises.js';

const root = fileURLToPath(new URL('..', import.meta.url));

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('nothing outlives a call', () => {
  it('leaves no timer armed after thousands of calls that succeed, fail, time out and abort', async () => {
    const clock = new CountingClock();
    const bulkhead = new Bulkhead({ maxConcurrent: 40, maxQueue: 80, queueTimeout: 15, clock });
    const stack = compose(
      withFallback('fallback'),
      new CircuitBreaker({ failureThreshold: 20, recoveryTimeout: 30, clock }),
      retryWithBackoff({ maxRetries: 2, baseDelay: 5, jitter: 'none', clock }),
      withTimeout(20, { clock }),
      bulkhead,
    );
    const calls = 4_000;
    const batch = 200;
    let aborts = 0;
    for (let start = 0; start < calls; start += batch) {
      const late: (() => void)[] = [];
      const aborters = new Map<number, AbortController[]>();
      const running: { kind: number; run: Settling<unknown>; controller: AbortController | undefined }[] = [];
      for (let i = start; i < start + batch; i++) {
        const kind = i % 5;
        let controller: AbortController | undefined;
        if (kind === 4) {
          controller = new AbortController();
          const at = 1 + (i % 40); // while queued, running or sleeping between retries
          aborters.set(at, [...(aborters.get(at) ?? []), controller]);
        }
        const run = settle(
          stack.execute(
            (ctx) => {
              switch (kind) {
                case 0:
                  return Promise.resolve(i);
                case 1:
                  return ctx.attempt === 1 ? Promise.reject(new Error('flaky')) : i;
                case 2:
                  return hangUntilAborted(ctx); // times out on every attempt
                case 3: {
                  const work = deferred<number>(); // ignores its signal and settles long after its deadline
                  late.push(() => work.resolve(i));
                  return work.promise;
                }
                default:
                  return ctx.attempt === 1 ? Promise.reject(new Error('then aborted')) : hangUntilAborted(ctx);
              }
            },
            controller === undefined ? undefined : { signal: controller.signal },
          ),
        );
        running.push({ kind, run, controller });
      }
      for (let tick = 1; tick <= 150; tick++) {
        await clock.advance(1);
        for (const controller of aborters.get(tick) ?? []) controller.abort(new Error(`caller gave up at ${tick}`));
        if (tick === 100) for (const settleLate of late.splice(0)) settleLate();
      }
      for (const { kind, run, controller } of running) {
        expect(run.outcome, `call of kind ${kind} settled`).toBeDefined();
        if (controller !== undefined && controller.signal.aborted && run.outcome?.status === 'rejected') {
          expect(run.outcome.reason).toBe(controller.signal.reason);
          aborts++;
        } else {
          expect(run.outcome?.status).toBe('fulfilled'); // the fallback answers every other failure
        }
      }
    }
    expect(aborts).toBeGreaterThan(100);
    expect(clock.created).toBeGreaterThan(calls); // the stack did arm timers...
    expect(clock.armed).toBe(0); // ...and none is left
    expect(bulkhead.active).toBe(0);
    expect(bulkhead.queued).toBe(0);
  });

  describe('each kind of call leaves no timer armed the moment it settles', () => {
    // Long deadlines, so a timer left behind by a settled call cannot have fired yet.
    function longStack() {
      const clock = new CountingClock();
      const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 5_000, clock });
      const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 500, clock });
      const stack = compose(
        withFallback((error: unknown) => error),
        breaker,
        retryWithBackoff({ maxRetries: 2, baseDelay: 50, jitter: 'none', clock }),
        withTimeout(1_000, { clock }),
        bulkhead,
      );
      return { clock, breaker, bulkhead, stack };
    }

    async function settleAll(clock: CountingClock, runs: Settling<unknown>[]): Promise<void> {
      for (let tick = 0; tick < 20_000 && runs.some((run) => run.outcome === undefined); tick++) await clock.advance(1);
      expect(runs.map((run) => run.outcome?.status)).not.toContain(undefined);
    }

    it.each<[string, (setup: ReturnType<typeof longStack>) => Promise<Settling<unknown>[]>]>([
      ['a success', async ({ stack }) => [settle(stack.execute(() => Promise.resolve('ok')))]],
      ['a synchronous success', async ({ stack }) => [settle(stack.execute(() => 'ok'))]],
      ['a flaky call that recovers', async ({ stack }) => [settle(stack.execute(({ attempt }) => (attempt < 3 ? Promise.reject(new Error('flaky')) : 'ok')))]],
      ['a failure answered by the fallback', async ({ stack }) => [settle(stack.execute(() => Promise.reject(new Error('down'))))]],
      ['timeouts on every attempt', async ({ stack }) => [settle(stack.execute(hangUntilAborted))]],
      ['a breaker refusal', async ({ stack, breaker }) => (breaker.isolate(), [settle(stack.execute(() => 'refused'))])],
      [
        'a caller abort while running',
        async ({ stack, clock }) => {
          const controller = new AbortController();
          const run = settle(stack.execute(hangUntilAborted, { signal: controller.signal }));
          await clock.advance(10);
          controller.abort('stop');
          return [run];
        },
      ],
      [
        'a caller abort while sleeping between retries',
        async ({ stack, clock }) => {
          const controller = new AbortController();
          const run = settle(stack.execute(() => Promise.reject(new Error('again')), { signal: controller.signal }));
          await clock.advance(10);
          controller.abort('stop');
          return [run];
        },
      ],
      [
        'a caller abort while queued, and the call it waited for',
        async ({ stack, clock }) => {
          const holder = deferred<unknown>();
          const first = settle(stack.execute(() => holder.promise));
          const controller = new AbortController();
          const queued = settle(stack.execute(() => 'never', { signal: controller.signal }));
          await clock.advance(10);
          controller.abort('stop');
          await flush();
          holder.resolve('done');
          return [first, queued];
        },
      ],
      [
        'a queue timeout, and the call it waited for',
        async ({ stack, clock }) => {
          const holder = deferred<unknown>();
          const first = settle(stack.execute(() => holder.promise));
          const queued = settle(stack.execute(() => 'never'));
          await clock.advance(500);
          expect(queued.outcome?.status).toBe('fulfilled'); // the fallback answered the rejection
          holder.resolve('done');
          return [first, queued];
        },
      ],
      [
        'a full bulkhead, and the calls it held',
        async ({ stack }) => {
          const holder = deferred<unknown>();
          const first = settle(stack.execute(() => holder.promise));
          const second = settle(stack.execute(() => 'queued'));
          const refused = settle(stack.execute(() => 'refused'));
          await flush();
          holder.resolve('done');
          return [first, second, refused];
        },
      ],
    ])('%s', async (_, start) => {
      const setup = longStack();
      const runs = await start(setup);
      await settleAll(setup.clock, runs);
      expect(setup.clock.armed).toBe(0);
      expect(setup.bulkhead.active).toBe(0);
      expect(setup.bulkhead.queued).toBe(0);
    });
  });

  describe('a caller signal shared by 2 000 concurrent calls', () => {
    function sharedSignalStack(clock: CountingClock): Policy {
      return compose(
        new CircuitBreaker({ clock }),
        retryWithBackoff({ maxRetries: 1, baseDelay: 1, clock }),
        withTimeout(1_000, { clock }),
        new Bulkhead({ maxConcurrent: 100, maxQueue: Infinity, clock }),
      );
    }

    /** 2 000 calls through `stack` sharing `signal`; each answers its index after a macrotask turn. */
    function quickCalls(stack: Policy, signal: AbortSignal): Promise<number>[] {
      return Array.from({ length: 2_000 }, (_, i) =>
        stack.execute(async () => {
          await flush();
          return i;
        }, { signal }),
      );
    }

    it('keeps no abort listener on the signal once the calls settle', async () => {
      const clock = new CountingClock();
      const stack = sharedSignalStack(clock);
      const controller = new AbortController();
      const runs = quickCalls(stack, controller.signal);
      expect(getEventListeners(controller.signal, 'abort').length).toBeGreaterThan(0);
      await clock.advance(10);
      const values = await Promise.all(runs);
      expect(values).toHaveLength(2_000);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      expect(clock.armed).toBe(0);
    });

    it('keeps no abort listener after the shared signal aborts them all', async () => {
      const clock = new CountingClock();
      const stack = sharedSignalStack(clock);
      const controller = new AbortController();
      const runs = Array.from({ length: 2_000 }, () => settle(stack.execute(hangUntilAborted, { signal: controller.signal })));
      await clock.advance(1);
      const reason = new Error('shutting down');
      controller.abort(reason);
      await flush();
      for (const run of runs) expect(reasonOf(run.outcome)).toBe(reason);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      expect(clock.armed).toBe(0);
    });

    it('raises no MaxListenersExceededWarning', async () => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error): void => {
        warnings.push(warning);
      };
      process.on('warning', onWarning);
      try {
        const clock = new CountingClock();
        const stack = sharedSignalStack(clock);
        const controller = new AbortController();
        const runs = quickCalls(stack, controller.signal);
        await clock.advance(10);
        await Promise.all(runs);
        await flush();
      } finally {
        process.off('warning', onWarning);
      }
      expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning').map((warning) => warning.message)).toEqual([]);
    });
  });

  it('a finished stack with 60 s timers does not keep Node alive', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/exit-after-calls.ts', import.meta.url))], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let reportedAt: number | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (reportedAt === undefined && stdout.includes('\n')) reportedAt = performance.now();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.on('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
    });
    const exitedAt = performance.now();
    clearTimeout(killer);
    expect(stderr).toBe('');
    expect(signal, 'the child had to be killed: something kept it alive').toBeNull();
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      fulfilled: 7,
      aborted: ['left the queue', 'stopped sleeping', 'stopped running'],
      state: 'open',
      refused: 'CircuitOpenError',
      active: 0,
      queued: 0,
    });
    expect(reportedAt).toBeDefined();
    expect(exitedAt - (reportedAt ?? 0)).toBeLessThan(2_000);
  });

  describe('no unhandled rejection when the function rejects after a timeout answered', () => {
    it.each<[string, (clock: CountingClock, fallback: () => string) => Policy<unknown>]>([
      ['withTimeout alone', (clock) => withTimeout(10, { clock })],
      ['a fallback outside the timeout', (clock, fallback) => compose(withFallback(fallback), withTimeout(10, { clock }))],
      ['a breaker outside the timeout', (clock) => compose(new CircuitBreaker({ clock }), withTimeout(10, { clock }))],
      ['a retry outside the timeout', (clock) => compose(retryWithBackoff({ maxRetries: 0, clock }), withTimeout(10, { clock }))],
      ['a timeout outside a retry', (clock) => compose(withTimeout(10, { clock }), retryWithBackoff({ maxRetries: 3, baseDelay: 0, clock }))],
      ['a timeout outside a fallback', (clock, fallback) => compose(withTimeout(10, { clock }), withFallback(fallback))],
      ['a timeout outside a bulkhead', (clock) => compose(withTimeout(10, { clock }), new Bulkhead({ maxConcurrent: 1, clock }))],
      [
        'the full stack',
        (clock, fallback) =>
          compose(
            withFallback(fallback),
            new CircuitBreaker({ clock }),
            retryWithBackoff({ maxRetries: 0, clock }),
            withTimeout(10, { clock }),
            new Bulkhead({ maxConcurrent: 1, clock }),
          ),
      ],
    ])('%s', async (_, build) => {
      await collectingUnhandledRejections(async (unhandled) => {
        const clock = new CountingClock();
        const fallback = vi.fn(() => 'fallback');
        const stack = build(clock, fallback);
        const work = deferred();
        const fn = vi.fn(() => work.promise);
        const run = settle(stack.execute(fn));
        await clock.advance(10);
        expect(run.outcome).toBeDefined();
        const answered = run.outcome;
        const late = new Error('late');
        work.reject(late);
        await flush();
        await flush();
        await clock.advance(1_000);
        expect(unhandled).toEqual([]);
        expect(run.outcome).toBe(answered);
        expect(fn).toHaveBeenCalledTimes(1); // nothing retried the late failure
        expect(fallback.mock.calls.length).toBeLessThanOrEqual(1); // a fallback answers once, never for the late one
        if (answered?.status === 'rejected') expect(isTimeoutError(answered.reason)).toBe(true);
        expect(clock.armed).toBe(0);
      });
    });

    it('nor when it rejects after the caller aborted', async () => {
      await collectingUnhandledRejections(async (unhandled) => {
        const clock = new CountingClock();
        const fallback = vi.fn(() => 'fallback');
        const stack = compose(withFallback(fallback), new CircuitBreaker({ clock }), retryWithBackoff({ clock }), withTimeout(1_000, { clock }), new Bulkhead({ maxConcurrent: 1, clock }));
        const work = deferred();
        const controller = new AbortController();
        const run = settle(stack.execute(() => work.promise, { signal: controller.signal }));
        await clock.advance(1);
        controller.abort('gone');
        await flush();
        work.reject(new Error('late'));
        await flush();
        await flush();
        expect(unhandled).toEqual([]);
        expect(reasonOf(run.outcome)).toBe('gone');
        expect(fallback).not.toHaveBeenCalled();
      });
    });
  });
});

describe('listeners that throw', () => {
  it('never break a call, for any event of any policy, and are reported', async () => {
    const reported = vi.fn();
    vi.stubGlobal('reportError', reported);
    const clock = new CountingClock();
    const thrown: Error[] = [];
    const calls = new Map<string, number>();
    const throwing =
      (name: string) =>
      (): never => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        const error = new Error(`listener ${name} broke`);
        thrown.push(error);
        throw error;
      };

    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 100, clock });
    for (const event of ['stateChange', 'success', 'failure', 'rejected'] as const) breaker.on(event, throwing(`breaker:${event}`));
    const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 10, jitter: 'none', clock });
    for (const event of ['retry', 'giveUp'] as const) retry.on(event, throwing(`retry:${event}`));
    const bulkhead = new Bulkhead({ maxConcurrent: 1, clock });
    bulkhead.on('rejected', throwing('bulkhead:rejected'));
    const timeout = withTimeout(50, { clock });
    timeout.on('timeout', throwing('timeout:timeout'));
    const fallback = withFallback('fallback');
    fallback.on('fallback', throwing('fallback:fallback'));

    // retry: one retry, then a give-up
    const flaky = settle(retry.execute(({ attempt }) => (attempt === 1 ? Promise.reject(new Error('flaky')) : 'recovered')));
    await clock.advance(10);
    expect(flaky.outcome).toEqual({ status: 'fulfilled', value: 'recovered' });
    const lastError = new Error('still failing');
    const givenUp = settle(retry.execute(() => Promise.reject(lastError)));
    await clock.advance(10);
    expect(reasonOf(givenUp.outcome)).toBe(lastError);

    // timeout
    const timedOut = settle(timeout.execute(hangUntilAborted));
    await clock.advance(50);
    expect(reasonOf(timedOut.outcome)).toBeInstanceOf(TimeoutError);

    // bulkhead
    const holder = deferred<string>();
    const holding = settle(bulkhead.execute(() => holder.promise));
    await expect(bulkhead.execute(() => 'no slot')).rejects.toBeInstanceOf(BulkheadRejectedError);
    holder.resolve('held');
    await flush();
    expect(holding.outcome).toEqual({ status: 'fulfilled', value: 'held' });

    // breaker: failure and opening, refusal, half-open, trial success and closing
    const failure = new Error('down');
    await expect(breaker.execute(() => Promise.reject(failure))).rejects.toBe(failure);
    await expect(breaker.execute(() => 'refused')).rejects.toBeInstanceOf(CircuitOpenError);
    await clock.advance(100);
    expect(breaker.state).toBe('half-open');
    await expect(breaker.execute(() => 'trial')).resolves.toBe('trial');
    expect(breaker.state).toBe('closed');

    // fallback
    await expect(fallback.execute(() => Promise.reject(new Error('x')))).resolves.toBe('fallback');

    expect(Object.fromEntries(calls)).toEqual({
      'retry:retry': 2,
      'retry:giveUp': 1,
      'timeout:timeout': 1,
      'bulkhead:rejected': 1,
      'breaker:failure': 1,
      'breaker:stateChange': 3,
      'breaker:rejected': 1,
      'breaker:success': 1,
      'fallback:fallback': 1,
    });
    expect(reported.mock.calls.map(([error]: unknown[]) => error)).toEqual(thrown);
    expect(clock.armed).toBe(0);
  });

  it('go to console.error when there is no reportError', async () => {
    vi.stubGlobal('reportError', undefined);
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const breaker = new CircuitBreaker();
    const broken = new Error('metrics hook broke');
    breaker.on('success', () => {
      throw broken;
    });
    await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
    expect(consoleError).toHaveBeenCalledTimes(1);
    expect(consoleError.mock.calls[0]).toContain(broken);
  });
});

describe('caller aborts win at every stage', () => {
  function abortStack() {
    const clock = new CountingClock();
    const fallback = vi.fn(() => 'fallback');
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 1_000, jitter: 'none', clock });
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 5, clock });
    const counted: string[] = [];
    breaker.on('failure', () => counted.push('breaker:failure'));
    breaker.on('stateChange', ({ to }) => counted.push(`breaker:${to}`));
    retry.on('retry', () => counted.push('retry:retry'));
    retry.on('giveUp', () => counted.push('retry:giveUp'));
    const fallbackPolicy = withFallback(fallback);
    fallbackPolicy.on('fallback', () => counted.push('fallback'));
    const stack = compose(fallbackPolicy, breaker, retry, withTimeout(10_000, { clock }), bulkhead);
    return { clock, fallback, breaker, bulkhead, counted, stack };
  }

  const reasons: [string, () => unknown][] = [
    ['an Error', () => new Error('user navigated away')],
    ['a string', () => 'user navigated away'],
    ['an object', () => ({ code: 499 })],
  ];

  it.each(reasons)('queued in a bulkhead: rejects with the reason (%s) and leaves the queue', async (_, makeReason) => {
    const { clock, fallback, breaker, bulkhead, counted, stack } = abortStack();
    const holder = deferred<string>();
    const first = settle(stack.execute(() => holder.promise));
    const controller = new AbortController();
    const fn = vi.fn(() => 'ran');
    const queued = settle(stack.execute(fn, { signal: controller.signal }));
    await flush();
    expect(bulkhead.queued).toBe(1);
    const reason = makeReason();
    controller.abort(reason);
    await flush();
    expect(queued.outcome).toEqual({ status: 'rejected', reason });
    expect(reasonOf(queued.outcome)).toBe(reason);
    expect(bulkhead.queued).toBe(0);
    holder.resolve('first');
    await flush();
    expect(first.outcome).toEqual({ status: 'fulfilled', value: 'first' });
    expect(fn).not.toHaveBeenCalled();
    expect(fallback).not.toHaveBeenCalled();
    expect(counted).toEqual([]);
    expect(breaker.state).toBe('closed');
    expect(clock.armed).toBe(0);
  });

  it.each(reasons)('sleeping between retries: rejects with the reason (%s) and retries no more', async (_, makeReason) => {
    const { clock, fallback, breaker, counted, stack } = abortStack();
    const controller = new AbortController();
    const fn = vi.fn(() => Promise.reject(new Error('try again')));
    const run = settle(stack.execute(fn, { signal: controller.signal }));
    await clock.advance(500);
    expect(counted).toEqual(['retry:retry']);
    const reason = makeReason();
    controller.abort(reason);
    await flush();
    expect(reasonOf(run.outcome)).toBe(reason);
    expect(clock.armed).toBe(0); // the sleep was cleared, not left to fire
    await clock.advance(10_000);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(counted).toEqual(['retry:retry']); // no give-up, no breaker failure
    expect(fallback).not.toHaveBeenCalled();
    expect(breaker.state).toBe('closed');
  });

  it.each(reasons)('running: rejects with the reason (%s) and aborts ctx.signal with it', async (_, makeReason) => {
    const { clock, fallback, breaker, bulkhead, counted, stack } = abortStack();
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const run = settle(
      stack.execute((ctx) => {
        seen = ctx.signal;
        return hangUntilAborted(ctx);
      }, { signal: controller.signal }),
    );
    await clock.advance(100);
    const reason = makeReason();
    controller.abort(reason);
    await flush();
    expect(reasonOf(run.outcome)).toBe(reason);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(reason);
    expect(counted).toEqual([]);
    expect(fallback).not.toHaveBeenCalled();
    expect(breaker.state).toBe('closed');
    expect(bulkhead.active).toBe(0);
    expect(clock.armed).toBe(0);
  });

  it('running a function that ignores its signal: rejects at once, the slot is held until the function settles', async () => {
    const { clock, fallback, counted, bulkhead, stack } = abortStack();
    const controller = new AbortController();
    const work = deferred<string>();
    const run = settle(stack.execute(() => work.promise, { signal: controller.signal }));
    await clock.advance(1);
    controller.abort('stop');
    await flush();
    expect(reasonOf(run.outcome)).toBe('stop');
    expect(bulkhead.active).toBe(1);
    work.resolve('finished anyway');
    await flush();
    expect(bulkhead.active).toBe(0);
    expect(reasonOf(run.outcome)).toBe('stop');
    expect(counted).toEqual([]);
    expect(fallback).not.toHaveBeenCalled();
    expect(clock.armed).toBe(0);
  });

  it('an abort without a reason rejects with the signal’s own AbortError', async () => {
    const { stack } = abortStack();
    const controller = new AbortController();
    const run = settle(stack.execute(hangUntilAborted, { signal: controller.signal }));
    await flush();
    controller.abort();
    await flush();
    expect(reasonOf(run.outcome)).toBe(controller.signal.reason);
    expect((controller.signal.reason as DOMException).name).toBe('AbortError');
  });

  it('a signal aborted before execute rejects with its reason without calling fn', async () => {
    const { fallback, counted, bulkhead, stack } = abortStack();
    const reason = new Error('already gone');
    const fn = vi.fn(() => 'ran');
    await expect(stack.execute(fn, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(retryWithBackoff().execute(fn, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect(fallback).not.toHaveBeenCalled();
    expect(counted).toEqual([]);
    expect(bulkhead.active).toBe(0);
  });
});

describe('ctx.signal', () => {
  function countAbortControllers(): { readonly count: number } {
    const Original = globalThis.AbortController;
    const counter = { count: 0 };
    class CountingAbortController extends Original {
      constructor() {
        super();
        counter.count++;
      }
    }
    vi.stubGlobal('AbortController', CountingAbortController);
    return counter;
  }

  it('is never built for a function that does not read it', async () => {
    const clock = new CountingClock();
    const caller = new AbortController();
    const stack = compose(
      withFallback('fallback'),
      new CircuitBreaker({ clock }),
      retryWithBackoff({ maxRetries: 1, baseDelay: 5, clock }),
      withTimeout(20, { clock }),
      new Bulkhead({ maxConcurrent: 1, maxQueue: 10, clock }),
    );
    const counter = countAbortControllers();
    const runs = [
      settle(stack.execute(() => 'ok')),
      settle(stack.execute(({ attempt }) => (attempt === 1 ? Promise.reject(new Error('flaky')) : 'ok'))),
      settle(stack.execute(hang)), // times out twice
      settle(stack.execute(() => 'ok', { signal: caller.signal })),
      settle(withTimeout(20, { clock }).execute(async () => 'ok')),
    ];
    await clock.advance(100);
    expect(runs.map((run) => run.outcome?.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(counter.count).toBe(0);
  });

  it('is the caller’s own signal when no timeout encloses the function', async () => {
    const caller = new AbortController();
    const counter = countAbortControllers();
    const seen = await compose(new CircuitBreaker(), retryWithBackoff()).execute(({ signal }) => signal, { signal: caller.signal });
    expect(seen).toBe(caller.signal);
    expect(counter.count).toBe(0);
  });

  it('aborts at the deadline with the TimeoutError the call rejects with', async () => {
    const clock = new CountingClock();
    const counter = countAbortControllers();
    let seen: AbortSignal | undefined;
    const run = settle(
      compose(new CircuitBreaker({ clock }), withTimeout(100, { clock })).execute((ctx) => {
        seen = ctx.signal;
        return new Promise<never>(() => {}); // ignores the signal
      }),
    );
    await clock.advance(99);
    expect(seen?.aborted).toBe(false);
    expect(run.outcome).toBeUndefined();
    await clock.advance(1);
    const reason = reasonOf(run.outcome);
    expect(reason).toBeInstanceOf(TimeoutError);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(reason);
    expect(counter.count).toBe(1);
  });
});

describe('driven by vi.useFakeTimers() alone', () => {
  it('retry delays, timeouts and breaker recovery follow the fake clock', async () => {
    vi.useFakeTimers();
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 1_000 });
    const stack = compose(breaker, retryWithBackoff({ maxRetries: 2, baseDelay: 100, jitter: 'none' }), withTimeout(50));
    const t0 = Date.now();

    // retry delays: 100 then 200 ms
    const failing: number[] = [];
    const error = new Error('down');
    const first = settle(
      stack.execute(() => {
        failing.push(Date.now() - t0);
        return Promise.reject(error);
      }),
    );
    await vi.advanceTimersByTimeAsync(299);
    expect(failing).toEqual([0, 100]);
    await vi.advanceTimersByTimeAsync(1);
    expect(failing).toEqual([0, 100, 300]);
    expect(reasonOf(first.outcome)).toBe(error);

    // timeouts: 50 ms per attempt, between the same delays
    const t1 = Date.now();
    const hanging: number[] = [];
    const second = settle(
      stack.execute((ctx) => {
        hanging.push(Date.now() - t1);
        return hangUntilAborted(ctx);
      }),
    );
    await vi.advanceTimersByTimeAsync(449);
    expect(second.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(hanging).toEqual([0, 150, 400]);
    expect(isTimeoutError(reasonOf(second.outcome))).toBe(true);
    expect(breaker.state).toBe('open');

    // breaker recovery
    await vi.advanceTimersByTimeAsync(999);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(breaker.state).toBe('half-open');
    await expect(stack.execute(() => 'trial')).resolves.toBe('trial');
    expect(breaker.state).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a bulkhead queue timeout follows the fake clock', async () => {
    vi.useFakeTimers();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 250 });
    const holding = settle(bulkhead.execute(() => new Promise((resolve) => setTimeout(resolve, 1_000))));
    const waiting = settle(bulkhead.execute(() => 'late'));
    await vi.advanceTimersByTimeAsync(249);
    expect(waiting.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(reasonOf(waiting.outcome)).toBeInstanceOf(BulkheadRejectedError);
    await vi.advanceTimersByTimeAsync(750);
    expect(holding.outcome?.status).toBe('fulfilled');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('the context a function receives', () => {
  it('shows only attempt when spread or logged, and still gives signal on read', async () => {
    const stack = compose(retryWithBackoff({ maxRetries: 0 }), withTimeout(1_000));
    const seen = await stack.execute((ctx) => ({ spread: { ...ctx }, json: JSON.stringify(ctx), aborted: ctx.signal.aborted }));
    expect(seen.spread).toEqual({ attempt: 1 });
    expect(JSON.parse(seen.json)).toEqual({ attempt: 1 });
    expect(seen.aborted).toBe(false);
  });
});
