import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, type CircuitState } from '../../src/index.js';
import { HealthMonitor, type CheckResult, type CircuitBreakerLike, type HealthCheckContext } from '../../src/health/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { collectingUnhandledRejections, deferred, hang, letNodeReportUnhandledRejections, track } from '../fixtures/promises.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A breaker stand-in whose state the test sets. */
function fakeBreaker(state: CircuitState = 'closed'): CircuitBreakerLike & { state: CircuitState } {
  return { state };
}

/** A check that resolves after `ms` on the given clock. */
function after(clock: CountingClock, ms: number, value: unknown = undefined): () => Promise<unknown> {
  return () => new Promise((resolve) => clock.setTimeout(() => resolve(value), ms));
}

describe('HealthMonitor: options', () => {
  it('defaults to a 5 s timeout and no cache', () => {
    const health = new HealthMonitor();
    expect(health.timeout).toBe(5_000);
    expect(health.cacheTtl).toBe(0);
    expect(health.phase).toBe('starting');
    expect(health.names).toEqual([]);
  });

  it.each([
    [{ timeout: 0 }, RangeError, /HealthMonitor timeout must be a duration in ms greater than 0.*got 0/],
    [{ timeout: -1 }, RangeError, /HealthMonitor timeout .*got -1/],
    [{ timeout: Number.NaN }, RangeError, /HealthMonitor timeout .*got NaN/],
    [{ timeout: Infinity }, RangeError, /HealthMonitor timeout .*got Infinity/],
    [{ timeout: 2 ** 31 }, RangeError, /HealthMonitor timeout .*got 2147483648/],
    [{ timeout: '5000' }, TypeError, /HealthMonitor timeout must be a number, got "5000"/],
    [{ cacheTtl: -1 }, RangeError, /HealthMonitor cacheTtl must be a finite duration in ms ≥ 0, got -1/],
    [{ cacheTtl: Infinity }, RangeError, /HealthMonitor cacheTtl .*got Infinity/],
    [{ cacheTtl: Number.NaN }, RangeError, /HealthMonitor cacheTtl .*got NaN/],
    [{ clock: {} }, TypeError, /HealthMonitor clock must be a Clock/],
    [{ cacheTTL: 1_000 }, TypeError, /HealthMonitor has no option "cacheTTL" \(did you mean "cacheTtl"\?\); known options: "timeout", "cacheTtl", "clock"/],
    ['fast', TypeError, /HealthMonitor options must be an object, got "fast"/],
    [null, TypeError, /HealthMonitor options must be an object, got null/],
  ])('rejects %o with a %s naming the option and the value', (options, type, message) => {
    expect(() => new HealthMonitor(options as never)).toThrow(type);
    expect(() => new HealthMonitor(options as never)).toThrow(message);
  });

  it('accepts the extremes: a timeout at the timer limit, a cacheTtl of 0', () => {
    const health = new HealthMonitor({ timeout: 2_147_483_647, cacheTtl: 0 });
    expect([health.timeout, health.cacheTtl]).toEqual([2_147_483_647, 0]);
  });

  it.each([
    [{ timeout: 2 ** 31 }, new RangeError('HealthMonitor timeout must be a duration in ms greater than 0 and at most 2147483647, got 2147483648')],
    [{ cacheTtl: '1000' }, new TypeError('HealthMonitor cacheTtl must be a number, got "1000"')],
    [{ cacheTtl: -1 }, new RangeError('HealthMonitor cacheTtl must be a finite duration in ms ≥ 0, got -1')],
  ])('refuses %o with the whole rule', (options, error) => {
    expect(() => new HealthMonitor(options as never)).toThrow(error);
    expect(() => new HealthMonitor(options as never)).toThrow(error.constructor as typeof Error);
  });

  it('accepts undefined for each option (its default)', () => {
    const health = new HealthMonitor({ timeout: undefined, cacheTtl: undefined, clock: undefined });
    expect(health.timeout).toBe(5_000);
  });
});

describe('HealthMonitor: registration', () => {
  it.each([
    ['an empty name', RangeError, '', /addCheck: name must not be empty, got ""/],
    ['a blank name', RangeError, '   ', /addCheck: name must not be empty, got "   "/],
    ['a number', TypeError, 42, /addCheck: name must be a string, got 42/],
    ['undefined', TypeError, undefined, /addCheck: name must be a string, got undefined/],
  ])('rejects %s as a name', (_what, type, name, message) => {
    const health = new HealthMonitor();
    expect(() => health.addCheck(name as never, () => true)).toThrow(type);
    expect(() => health.addCheck(name as never, () => true)).toThrow(message);
    expect(() => health.addCircuitBreaker(name as never, fakeBreaker())).toThrow(type);
  });

  it('rejects a duplicate name, across checks and breakers, and names it', () => {
    const health = new HealthMonitor().addCheck('db', () => true);
    expect(() => health.addCheck('db', () => true)).toThrow(new RangeError('HealthMonitor addCheck: a check named "db" is already registered'));
    expect(() => health.addCircuitBreaker('db', fakeBreaker())).toThrow(/a check named "db" is already registered/);
    health.addCircuitBreaker('payments', fakeBreaker());
    expect(() => health.addCheck('payments', () => true)).toThrow(RangeError);
    expect(health.names).toEqual(['db', 'payments']);
  });

  it.each([undefined, null, 'ping', {}])('rejects a check that is not a function (%o)', (check) => {
    expect(() => new HealthMonitor().addCheck('db', check as never)).toThrow(TypeError);
    expect(() => new HealthMonitor().addCheck('db', check as never)).toThrow(/addCheck\("db"\): check must be a function/);
  });

  it.each([
    [{ timeout: 0 }, RangeError, /addCheck\("db"\) timeout must be a duration in ms greater than 0.*got 0/],
    [{ timeout: -5 }, RangeError, /got -5/],
    [{ timeout: Number.NaN }, RangeError, /got NaN/],
    [{ timeout: Infinity }, RangeError, /got Infinity/],
    [{ timeout: 2_001 }, RangeError, /addCheck\("db"\) timeout must not exceed the monitor's timeout \(2000 ms\), got 2001/],
    [{ critical: 'yes' }, TypeError, /addCheck\("db"\) critical must be true or false, got "yes"/],
    [{ retries: 3 }, TypeError, /addCheck\("db"\) has no option "retries"/],
    [5, TypeError, /addCheck\("db"\) options must be an object, got 5/],
  ])('rejects addCheck options %o', (options, type, message) => {
    const health = new HealthMonitor({ timeout: 2_000 });
    expect(() => health.addCheck('db', () => true, options as never)).toThrow(type);
    expect(() => health.addCheck('db', () => true, options as never)).toThrow(message);
    expect(health.names).toEqual([]); // nothing half-registered
  });

  it('accepts a check timeout equal to the monitor timeout', () => {
    expect(() => new HealthMonitor({ timeout: 2_000 }).addCheck('db', () => true, { timeout: 2_000 })).not.toThrow();
  });

  it.each([null, undefined, 'open', {}])('rejects a breaker without a state (%o)', (breaker) => {
    expect(() => new HealthMonitor().addCircuitBreaker('payments', breaker as never)).toThrow(TypeError);
    expect(() => new HealthMonitor().addCircuitBreaker('payments', breaker as never)).toThrow(/addCircuitBreaker\("payments"\): breaker must be an object with a state/);
  });

  it('rejects breaker options it does not know and a non-boolean critical', () => {
    const health = new HealthMonitor();
    expect(() => health.addCircuitBreaker('payments', fakeBreaker(), { timeout: 10 } as never)).toThrow(/has no option "timeout"/);
    expect(() => health.addCircuitBreaker('payments', fakeBreaker(), { critical: 1 } as never)).toThrow(/critical must be true or false, got 1/);
  });

  it('removeCheck unregisters by name and says whether it did', async () => {
    const health = new HealthMonitor().addCheck('db', () => false).addCircuitBreaker('payments', fakeBreaker('open'));
    expect(health.removeCheck('db')).toBe(true);
    expect(health.removeCheck('db')).toBe(false);
    expect(health.removeCheck('payments')).toBe(true);
    expect(health.names).toEqual([]);
    await expect(health.check()).resolves.toMatchObject({ status: 'healthy', checks: {} });
    health.addCheck('db', () => true); // the name is free again
    expect(health.names).toEqual(['db']);
  });
});

describe('HealthMonitor: what passes and what fails', () => {
  it.each([
    ['resolves undefined', () => Promise.resolve(undefined)],
    ['resolves true', () => Promise.resolve(true)],
    ['resolves an object', () => Promise.resolve({ rows: [] })],
    ['resolves 0', () => Promise.resolve(0)],
    ['returns a value synchronously', () => 42],
    ['returns nothing synchronously', () => undefined],
    ['returns a thenable that fulfils', () => ({ then: (resolve: (value: unknown) => void) => resolve('pong') })],
  ])('passes when the check %s', async (_what, check) => {
    const report = await new HealthMonitor().addCheck('db', check).check();
    expect(report.status).toBe('healthy');
    expect(report.checks['db']).toMatchObject({ status: 'pass', critical: true });
    expect(report.checks['db']).not.toHaveProperty('error');
  });

  it.each([
    ['resolves false', () => Promise.resolve(false), 'the check returned false'],
    ['returns false synchronously', () => false, 'the check returned false'],
    ['rejects', () => Promise.reject(new Error('ECONNREFUSED 10.0.0.5:5432')), 'ECONNREFUSED 10.0.0.5:5432'],
    ['throws synchronously', () => { throw new Error('pool closed'); }, 'pool closed'],
    ['throws a string', () => { throw 'no route'; }, 'no route'],
    ['throws an Error without a message', () => { throw new TypeError(); }, 'TypeError'],
    ['returns a thenable that rejects', () => ({ then: (_: unknown, reject: (e: unknown) => void) => reject(new Error('nope')) }), 'nope'],
    ['returns a thenable whose then throws', () => ({ then: () => { throw new Error('bad thenable'); } }), 'bad thenable'],
  ])('fails when the check %s, with the error text', async (_what, check, text) => {
    const report = await new HealthMonitor().addCheck('db', check as () => unknown).check();
    expect(report.status).toBe('unhealthy');
    expect(report.checks['db']).toMatchObject({ status: 'fail', error: text });
  });

  it('fails a check whose result has a then getter that throws', async () => {
    const evil = Object.defineProperty({}, 'then', {
      get() {
        throw new Error('getter trap');
      },
    });
    const report = await new HealthMonitor().addCheck('db', () => evil).check();
    expect(report.checks['db']).toMatchObject({ status: 'fail', error: 'getter trap' });
  });

  it('settles a synchronous check at once: its duration does not include checks called after it', async () => {
    let time = 1_000;
    const clock = { now: () => time, setTimeout: () => 0, clearTimeout: () => {} };
    const health = new HealthMonitor({ clock })
      .addCheck('sync', () => true)
      .addCheck('blocking', () => {
        time += 50; // synchronous work of the next check
        return true;
      });
    const report = await health.check();
    expect(report.checks['sync']?.durationMs).toBe(0);
    expect(report.checks['blocking']?.durationMs).toBe(50);
  });

  it('keeps what the check threw as cause, for logs', async () => {
    const error = new Error('down');
    const report = await new HealthMonitor().addCheck('db', () => Promise.reject(error)).check();
    expect(report.checks['db']?.cause).toBe(error);
  });

  it('survives an error whose message getter throws', async () => {
    const evil = Object.defineProperty({}, 'message', {
      get() {
        throw new Error('gotcha');
      },
    });
    const report = await new HealthMonitor().addCheck('db', () => Promise.reject(evil)).check();
    expect(report.checks['db']).toMatchObject({ status: 'fail', error: 'an error that cannot be printed' });
  });

  it.each([
    // [critical results, non-critical results, expected]
    [['pass'], [], 'healthy'],
    [[], [], 'healthy'],
    [['pass'], ['fail'], 'degraded'],
    [['fail'], ['pass'], 'unhealthy'],
    [['fail'], ['fail'], 'unhealthy'],
    [['pass', 'pass'], ['pass'], 'healthy'],
  ])('critical %o and non-critical %o make the service %s', async (critical, nonCritical, expected) => {
    const health = new HealthMonitor();
    critical.forEach((outcome, i) => health.addCheck(`c${i}`, () => outcome === 'pass'));
    nonCritical.forEach((outcome, i) => health.addCheck(`n${i}`, () => outcome === 'pass', { critical: false }));
    expect((await health.check()).status).toBe(expected);
  });

  it('lists the checks in registration order, each with its own result', async () => {
    const health = new HealthMonitor()
      .addCheck('b', () => true)
      .addCircuitBreaker('a', fakeBreaker())
      .addCheck('c', () => false, { critical: false });
    const report = await health.check();
    expect(Object.keys(report.checks)).toEqual(['b', 'a', 'c']);
    expect(report.checks['c']).toMatchObject({ status: 'fail', critical: false });
  });

  it('keeps a check named __proto__ as an own key of the report', async () => {
    const report = await new HealthMonitor().addCheck('__proto__', () => false).check();
    expect(Object.keys(report.checks)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(report.checks)).toBe(Object.prototype);
    expect(JSON.stringify(report.checks)).toMatch(/^\{"__proto__":\{"status":"fail"/);
  });

  it('hands each caller its own report object', async () => {
    const health = new HealthMonitor({ cacheTtl: 1_000 }).addCheck('db', () => true);
    const [first, second] = await Promise.all([health.check(), health.check()]);
    expect(first).not.toBe(second);
    (first.checks as Record<string, unknown>)['db'] = 'tampered';
    expect((await health.check()).checks['db']).toMatchObject({ status: 'pass' });
  });
});

describe('HealthMonitor: circuit breakers', () => {
  it.each([
    ['closed', 'pass', 'healthy', 'healthy'],
    ['half-open', 'warn', 'degraded', 'degraded'],
    ['open', 'fail', 'degraded', 'unhealthy'],
    ['isolated', 'fail', 'degraded', 'unhealthy'],
  ] as const)('a %s breaker reads %s: the service is %s, or %s when the breaker is critical', async (state, status, whenNotCritical, whenCritical) => {
    const plain = await new HealthMonitor().addCircuitBreaker('payments', fakeBreaker(state)).check();
    expect(plain.checks['payments']).toMatchObject({ status, critical: false, durationMs: 0, details: { state } });
    expect(plain.status).toBe(whenNotCritical);
    const critical = await new HealthMonitor().addCircuitBreaker('payments', fakeBreaker(state), { critical: true }).check();
    expect(critical.status).toBe(whenCritical);
  });

  it('says why a breaker warns or fails', async () => {
    const report = await new HealthMonitor()
      .addCircuitBreaker('a', fakeBreaker('open'))
      .addCircuitBreaker('b', fakeBreaker('half-open'))
      .addCircuitBreaker('c', fakeBreaker('closed'))
      .check();
    expect(report.checks['a']?.error).toBe('circuit open');
    expect(report.checks['b']?.error).toBe('circuit half-open');
    expect(report.checks['c']).not.toHaveProperty('error');
  });

  it('reads a real CircuitBreaker, including its lazy move to half-open, without arming a timer or adding a listener', async () => {
    const clock = new CountingClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    const health = new HealthMonitor({ clock }).addCircuitBreaker('payments', breaker);
    expect((await health.check()).checks['payments']?.status).toBe('pass');
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    expect((await health.check()).checks['payments']).toMatchObject({ status: 'fail', details: { state: 'open' } });
    await clock.advance(1_000);
    expect((await health.check()).checks['payments']).toMatchObject({ status: 'warn', details: { state: 'half-open' } });
    expect(clock.created).toBe(0);
  });

  it('reads breakers afresh even when the checks come from the cache', async () => {
    const clock = new CountingClock();
    const breaker = fakeBreaker('closed');
    const ping = vi.fn(() => true);
    const health = new HealthMonitor({ clock, cacheTtl: 10_000 }).addCheck('db', ping).addCircuitBreaker('payments', breaker);
    expect((await health.check()).status).toBe('healthy');
    breaker.state = 'open';
    const report = await health.check();
    expect(ping).toHaveBeenCalledTimes(1);
    expect(report.checks['payments']?.status).toBe('fail');
    expect(report.status).toBe('degraded');
  });

  it('shows stats() in the details when the breaker has it, and ignores a stats() that throws', async () => {
    const withStats = { state: 'closed' as const, stats: () => ({ failures: 3 }) };
    const broken = {
      state: 'closed' as const,
      stats: (): never => {
        throw new Error('no stats');
      },
    };
    const report = await new HealthMonitor().addCircuitBreaker('a', withStats).addCircuitBreaker('b', broken).check();
    expect(report.checks['a']?.details).toEqual({ state: 'closed', stats: { failures: 3 } });
    expect(report.checks['b']).toMatchObject({ status: 'pass', details: { state: 'closed' } });
  });

  it('fails a breaker whose state getter throws or reads as something unknown', async () => {
    const throwing = {
      get state(): CircuitState {
        throw new Error('adapter broke');
      },
    };
    const report = await new HealthMonitor()
      .addCircuitBreaker('a', throwing)
      .addCircuitBreaker('b', { state: 'weird' as CircuitState })
      .check();
    expect(report.checks['a']).toMatchObject({ status: 'fail', error: 'reading the circuit state failed: adapter broke' });
    expect(report.checks['b']).toMatchObject({ status: 'fail', error: 'unknown circuit state "weird"' });
  });
});

describe('HealthMonitor: timeouts and durations (injected clock)', () => {
  it('measures durationMs with the clock', async () => {
    const clock = new CountingClock();
    const health = new HealthMonitor({ clock }).addCheck('db', after(clock, 37)).addCheck('cache', after(clock, 5));
    const report = track(health.check());
    await clock.advance(37);
    expect(report.value?.checks['db']?.durationMs).toBe(37);
    expect(report.value?.checks['cache']?.durationMs).toBe(5);
    expect(report.value?.checkedAt).toBe(clock.now());
    expect(report.value?.checks['cache']?.checkedAt).toBe(clock.now() - 32);
  });

  it('runs checks concurrently: every check has started before any settles', async () => {
    const clock = new CountingClock();
    const started: string[] = [];
    const slow = (name: string) => () => {
      started.push(name);
      return after(clock, 100)();
    };
    const health = new HealthMonitor({ clock }).addCheck('a', slow('a')).addCheck('b', slow('b')).addCheck('c', slow('c'));
    const report = track(health.check());
    await clock.advance(0);
    expect(started).toEqual(['a', 'b', 'c']);
    await clock.advance(100); // three checks of 100 ms each take 100 ms together
    expect(report.value?.status).toBe('healthy');
  });

  it('fails a check that never settles at its timeout, aborts its signal, and does not hold the report', async () => {
    const clock = new CountingClock();
    let signal: AbortSignal | undefined;
    const health = new HealthMonitor({ clock, timeout: 2_000 })
      .addCheck('db', (context: HealthCheckContext) => {
        signal = context.signal;
        return hang();
      }, { timeout: 500 })
      .addCheck('cache', after(clock, 10), { critical: false });
    const report = track(health.check());
    await clock.advance(499);
    expect(report.settled).toBe(false);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    expect(report.settled).toBe(true);
    expect(report.value?.checks['db']).toMatchObject({ status: 'fail', durationMs: 500, timedOut: true, error: 'timed out after 500 ms' });
    expect(report.value?.checks['cache']).toMatchObject({ status: 'pass', durationMs: 10 });
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(DOMException);
    expect((signal?.reason as DOMException).name).toBe('TimeoutError');
    expect(report.value?.checks['db']?.cause).toBe(signal?.reason);
    expect(clock.armed).toBe(0);
  });

  it('uses the monitor timeout for a check that sets none', async () => {
    const clock = new CountingClock();
    const health = new HealthMonitor({ clock, timeout: 300 }).addCheck('db', hang);
    const report = track(health.check());
    await clock.advance(299);
    expect(report.settled).toBe(false);
    await clock.advance(1);
    expect(report.value?.checks['db']).toMatchObject({ status: 'fail', timedOut: true, durationMs: 300 });
  });

  it.each([
    [499, 'pass'],
    [500, 'fail'],
  ] as const)('a check that settles at %i ms with a 500 ms timeout reads %s (the deadline belongs to the timeout)', async (ms, status) => {
    const clock = new CountingClock();
    const health = new HealthMonitor({ clock }).addCheck('db', after(clock, ms), { timeout: 500 });
    const report = track(health.check());
    await clock.advance(500);
    expect(report.value?.checks['db']?.status).toBe(status);
    expect(clock.armed).toBe(0);
  });

  it('clears its timer as soon as a check settles, also for a synchronous check', async () => {
    const clock = new CountingClock();
    const health = new HealthMonitor({ clock }).addCheck('sync', () => true).addCheck('throws', () => {
      throw new Error('x');
    });
    const report = await health.check();
    expect(report.status).toBe('unhealthy');
    expect(clock.created).toBe(2);
    expect(clock.armed).toBe(0);
  });

  it('leaves no unhandled rejection when a timed-out check rejects later', async () => {
    await collectingUnhandledRejections(async (unhandled) => {
      const clock = new CountingClock();
      const late = deferred();
      const health = new HealthMonitor({ clock }).addCheck('db', () => late.promise, { timeout: 100 });
      const report = track(health.check());
      await clock.advance(100);
      expect(report.value?.checks['db']?.timedOut).toBe(true);
      late.reject(new Error('late failure'));
      await letNodeReportUnhandledRejections();
      expect(unhandled).toEqual([]);
      expect(report.value?.checks['db']?.error).toBe('timed out after 100 ms'); // the late outcome changes nothing
    });
  });
});

describe('HealthMonitor: fake timers and the default clock', () => {
  it('answers at the timeout when a check never settles, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const health = new HealthMonitor({ timeout: 1_000 }).addCheck('db', hang).addCheck('cache', () => true);
    const report = track(health.check());
    await vi.advanceTimersByTimeAsync(999);
    expect(report.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(report.value).toMatchObject({ status: 'unhealthy', checks: { db: { status: 'fail', durationMs: 1_000 }, cache: { status: 'pass' } } });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no timer after a report of checks that all settled early', async () => {
    vi.useFakeTimers();
    const health = new HealthMonitor().addCheck('db', () => new Promise((resolve) => setTimeout(resolve, 20)));
    const report = track(health.check());
    expect(vi.getTimerCount()).toBe(2); // the check's own timer and its 5 s deadline
    await vi.advanceTimersByTimeAsync(20);
    expect(report.value?.checks['db']).toMatchObject({ status: 'pass', durationMs: 20 });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('HealthMonitor: no stampede', () => {
  it('shares one run among concurrent check() calls, and starts a new one after it (cacheTtl 0)', async () => {
    const clock = new CountingClock();
    const gate = deferred<boolean>();
    const ping = vi.fn(() => gate.promise);
    const health = new HealthMonitor({ clock }).addCheck('db', ping);
    const reports = [track(health.check()), track(health.check()), track(health.check())];
    await clock.advance(0);
    expect(ping).toHaveBeenCalledTimes(1);
    gate.resolve(true);
    await clock.advance(0);
    expect(reports.map((r) => r.value?.status)).toEqual(['healthy', 'healthy', 'healthy']);
    await health.check();
    expect(ping).toHaveBeenCalledTimes(2);
  });

  it('runs a critical check once when check() and ready() overlap', async () => {
    const clock = new CountingClock();
    const gate = deferred<boolean>();
    const ping = vi.fn(() => gate.promise);
    const search = vi.fn(() => true);
    const health = new HealthMonitor({ clock }).addCheck('db', ping).addCheck('search', search, { critical: false });
    health.markReady();
    const report = track(health.check());
    const readiness = track(health.ready());
    await clock.advance(0);
    expect(ping).toHaveBeenCalledTimes(1);
    gate.resolve(true);
    await clock.advance(0);
    expect(report.value?.status).toBe('healthy');
    expect(readiness.value?.ready).toBe(true);
    expect(search).toHaveBeenCalledTimes(1);
    await health.ready(); // nothing in flight any more: a new invocation
    expect(ping).toHaveBeenCalledTimes(2);
  });

  it.each([
    [999, 1],
    [1_000, 2],
  ])('with cacheTtl 1000, a check() %i ms after the report makes %i run(s) in all', async (wait, runs) => {
    const clock = new CountingClock();
    const ping = vi.fn(() => true);
    const health = new HealthMonitor({ clock, cacheTtl: 1_000 }).addCheck('db', ping);
    const first = await health.check();
    await clock.advance(wait);
    const second = await health.check();
    expect(ping).toHaveBeenCalledTimes(runs);
    expect(second.checkedAt).toBe(runs === 1 ? first.checkedAt : clock.now());
  });

  it('counts the cache age from when the run finished, not when it started', async () => {
    const clock = new CountingClock();
    const ping = vi.fn(after(clock, 400));
    const health = new HealthMonitor({ clock, cacheTtl: 1_000 }).addCheck('db', ping);
    const first = track(health.check());
    await clock.advance(400);
    expect(first.settled).toBe(true);
    await clock.advance(999);
    await health.check();
    expect(ping).toHaveBeenCalledTimes(1);
  });

  it('caches a failing report too (a failing database is not hammered by every probe)', async () => {
    const ping = vi.fn(() => false);
    const health = new HealthMonitor({ clock: new CountingClock(), cacheTtl: 1_000 }).addCheck('db', ping);
    await health.check();
    expect((await health.check()).status).toBe('unhealthy');
    expect(ping).toHaveBeenCalledTimes(1);
  });

  it('does not reuse a cached report or a run in flight after the checks changed', async () => {
    const clock = new CountingClock();
    const gate = deferred<boolean>();
    const ping = vi.fn(() => gate.promise);
    const health = new HealthMonitor({ clock, cacheTtl: 10_000 }).addCheck('db', ping);
    const before = track(health.check());
    await clock.advance(0);
    health.addCheck('cache', () => false, { critical: false });
    const afterAdd = track(health.check());
    await clock.advance(0);
    // The new set starts its own run; the database ping already in flight is shared, not repeated.
    expect(ping).toHaveBeenCalledTimes(1);
    gate.resolve(true);
    await clock.advance(0);
    expect(Object.keys(before.value?.checks ?? {})).toEqual(['db']);
    expect(afterAdd.value).toMatchObject({ status: 'degraded', checks: { db: { status: 'pass' }, cache: { status: 'fail' } } });
    expect(before.value).not.toBe(afterAdd.value);
    health.removeCheck('cache');
    expect((await health.check()).status).toBe('healthy'); // the cached degraded report is not reused
    expect(ping).toHaveBeenCalledTimes(2);
  });
});

describe('HealthMonitor: readiness and liveness', () => {
  it('is not ready while starting, and does not run checks then', async () => {
    const ping = vi.fn(() => true);
    const health = new HealthMonitor().addCheck('db', ping);
    await expect(health.ready()).resolves.toEqual({ ready: false, reason: 'starting', checks: {} });
    expect(ping).not.toHaveBeenCalled();
  });

  it('is ready after markReady when the critical checks pass, and runs only those', async () => {
    const critical = vi.fn(() => true);
    const optional = vi.fn(() => false);
    const health = new HealthMonitor().addCheck('db', critical).addCheck('search', optional, { critical: false });
    health.markReady();
    const readiness = await health.ready();
    expect(readiness).toEqual({ ready: true, checks: { db: expect.objectContaining({ status: 'pass' }) as CheckResult } });
    expect(critical).toHaveBeenCalledTimes(1);
    expect(optional).not.toHaveBeenCalled();
  });

  it('is not ready while a critical check fails, and ready again once it passes', async () => {
    let up = false;
    const health = new HealthMonitor().addCheck('db', () => up);
    health.markReady();
    await expect(health.ready()).resolves.toMatchObject({ ready: false, reason: 'unhealthy', checks: { db: { status: 'fail' } } });
    up = true;
    await expect(health.ready()).resolves.toMatchObject({ ready: true });
  });

  it('treats breakers by their critical flag: a critical open breaker is not ready, another is', async () => {
    const health = new HealthMonitor().addCircuitBreaker('payments', fakeBreaker('open'));
    health.markReady();
    await expect(health.ready()).resolves.toEqual({ ready: true, checks: {} });
    health.addCircuitBreaker('auth', fakeBreaker('open'), { critical: true });
    await expect(health.ready()).resolves.toMatchObject({ ready: false, reason: 'unhealthy', checks: { auth: { status: 'fail' } } });
    health.removeCheck('auth');
    health.addCircuitBreaker('auth', fakeBreaker('half-open'), { critical: true });
    await expect(health.ready()).resolves.toMatchObject({ ready: true, checks: { auth: { status: 'warn' } } });
  });

  it('is not ready from drain() on, for good, even if markReady() is called again', async () => {
    const health = new HealthMonitor().addCheck('db', () => true);
    health.markReady();
    expect(health.phase).toBe('ready');
    health.drain();
    expect(health.phase).toBe('draining');
    await expect(health.ready()).resolves.toEqual({ ready: false, reason: 'draining', checks: {} });
    health.markReady();
    expect(health.phase).toBe('draining');
    await expect(health.ready()).resolves.toMatchObject({ ready: false, reason: 'draining' });
  });

  it('answers not ready when drain() comes while the critical checks run', async () => {
    const clock = new CountingClock();
    const gate = deferred<boolean>();
    const health = new HealthMonitor({ clock }).addCheck('db', () => gate.promise);
    health.markReady();
    const readiness = track(health.ready());
    await clock.advance(0);
    expect(readiness.settled).toBe(false);
    health.drain();
    gate.resolve(true);
    await clock.advance(0);
    expect(readiness.value).toMatchObject({ ready: false, reason: 'draining', checks: { db: { status: 'pass' } } });
  });

  it('markReady() is idempotent and drain() may come before it', async () => {
    const health = new HealthMonitor();
    health.markReady();
    health.markReady();
    await expect(health.ready()).resolves.toEqual({ ready: true, checks: {} });
    const early = new HealthMonitor();
    early.drain();
    early.markReady();
    await expect(early.ready()).resolves.toMatchObject({ ready: false, reason: 'draining' });
  });

  it('shares a critical run among concurrent ready() calls and reuses a fresh full report', async () => {
    const clock = new CountingClock();
    const gate = deferred<boolean>();
    const ping = vi.fn(() => gate.promise);
    const health = new HealthMonitor({ clock, cacheTtl: 1_000 }).addCheck('db', ping);
    health.markReady();
    const answers = [track(health.ready()), track(health.ready())];
    await clock.advance(0);
    expect(ping).toHaveBeenCalledTimes(1);
    gate.resolve(true);
    await clock.advance(0);
    expect(answers.map((a) => a.value?.ready)).toEqual([true, true]);

    await clock.advance(1_000); // both caches are stale now
    ping.mockImplementation(() => Promise.resolve(true));
    await health.check();
    expect(ping).toHaveBeenCalledTimes(2);
    await health.ready(); // the full report is fresh: no new run
    expect(ping).toHaveBeenCalledTimes(2);
  });

  it('live() is synchronous, always alive, also while draining, and runs no check', () => {
    const ping = vi.fn(() => false);
    const health = new HealthMonitor().addCheck('db', ping);
    expect(health.live()).toEqual({ alive: true });
    health.drain();
    expect(health.live()).toEqual({ alive: true });
    expect(ping).not.toHaveBeenCalled();
  });
});

describe('HealthMonitor: which report is reused, and when', () => {
  it('names addCircuitBreaker in its errors, with the whole rule', () => {
    const health = new HealthMonitor();
    expect(() => health.addCircuitBreaker(42 as never, fakeBreaker())).toThrow(new TypeError('HealthMonitor addCircuitBreaker: name must be a string, got 42'));
    expect(() => health.addCircuitBreaker('payments', fakeBreaker(), { timeout: 10 } as never)).toThrow(
      new TypeError('HealthMonitor addCircuitBreaker("payments") has no option "timeout"; known options: "critical"'),
    );
    expect(health.names).toEqual([]);
  });

  it('keeps a cached report when removeCheck() finds nothing to remove', async () => {
    const ping = vi.fn(() => true);
    const health = new HealthMonitor({ clock: new CountingClock(), cacheTtl: 10_000 }).addCheck('db', ping);
    await health.check();
    expect(health.removeCheck('nothing')).toBe(false);
    await health.check();
    expect(ping).toHaveBeenCalledTimes(1);
  });

  it('never serves a cached report of an earlier set of checks, after an add and a remove', async () => {
    const first = vi.fn(() => true);
    const second = vi.fn(() => false);
    const health = new HealthMonitor({ clock: new CountingClock(), cacheTtl: 10_000 }).addCheck('first', first);
    await health.check();
    health.addCheck('second', second, { critical: false });
    health.removeCheck('first');
    const report = await health.check();
    expect(Object.keys(report.checks)).toEqual(['second']);
    expect(report.status).toBe('degraded');
    expect([first.mock.calls.length, second.mock.calls.length]).toEqual([1, 1]);
  });

  it('answers ready() from a fresh full report with the critical checks only', async () => {
    const db = vi.fn(() => true);
    const search = vi.fn(() => true);
    const health = new HealthMonitor({ clock: new CountingClock(), cacheTtl: 10_000 }).addCheck('db', db).addCheck('search', search, { critical: false });
    health.markReady();
    await health.check();
    const readiness = await health.ready();
    expect(Object.keys(readiness.checks)).toEqual(['db']);
    expect(readiness.ready).toBe(true);
    expect([db.mock.calls.length, search.mock.calls.length]).toEqual([1, 1]);
  });

  it('reuses a fresh readiness run for ready(), but never for check(), which needs every check', async () => {
    const db = vi.fn(() => true);
    const search = vi.fn(() => true);
    const health = new HealthMonitor({ clock: new CountingClock(), cacheTtl: 10_000 }).addCheck('db', db).addCheck('search', search, { critical: false });
    health.markReady();
    await health.ready();
    await health.ready();
    expect([db.mock.calls.length, search.mock.calls.length]).toEqual([1, 0]);
    const report = await health.check();
    expect(Object.keys(report.checks)).toEqual(['db', 'search']);
    expect([db.mock.calls.length, search.mock.calls.length]).toEqual([2, 1]);
  });

  it('caches nothing for breakers alone: each report is of now', async () => {
    const clock = new CountingClock();
    const health = new HealthMonitor({ clock, cacheTtl: 10_000 }).addCircuitBreaker('payments', fakeBreaker());
    const first = await health.check();
    expect(first.checkedAt).toBe(clock.now());
    await clock.advance(5);
    expect((await health.check()).checkedAt).toBe(clock.now());
  });

  it('shares the newest run in flight even after an older run of the same scope finished', async () => {
    const clock = new CountingClock();
    const dbGate = deferred<boolean>();
    const searchGate = deferred<boolean>();
    const db = vi.fn(() => dbGate.promise);
    const health = new HealthMonitor({ clock }).addCheck('db', db);
    const older = track(health.check());
    await clock.advance(0);
    health.addCheck('search', () => searchGate.promise, { critical: false });
    const newer = track(health.check()); // a new run: shares the db ping in flight
    await clock.advance(0);
    dbGate.resolve(true);
    await clock.advance(0);
    expect(older.value?.status).toBe('healthy');
    expect(newer.settled).toBe(false);
    const joining = track(health.check()); // joins the newer run: no second db ping
    searchGate.resolve(true);
    await clock.advance(0);
    expect(db).toHaveBeenCalledTimes(1);
    expect(joining.value).toEqual(newer.value);
  });

  it('keeps the newest cached report when a run of an older set of checks finishes after it', async () => {
    const clock = new CountingClock();
    const gate = deferred<boolean>();
    const fresh = vi.fn(() => true);
    const health = new HealthMonitor({ clock, cacheTtl: 10_000 }).addCheck('slow', () => gate.promise);
    const older = track(health.check());
    await clock.advance(0);
    health.removeCheck('slow');
    health.addCheck('fresh', fresh);
    await health.check(); // cached
    gate.resolve(true);
    await clock.advance(0);
    expect(Object.keys(older.value?.checks ?? {})).toEqual(['slow']);
    const report = await health.check();
    expect(Object.keys(report.checks)).toEqual(['fresh']);
    expect(fresh).toHaveBeenCalledTimes(1);
  });

  it('with cacheTtl 0 never reuses a finished report, even when the clock steps back', async () => {
    let now = 1_000_000;
    const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };
    const ping = vi.fn(() => true);
    const health = new HealthMonitor({ clock }).addCheck('db', ping);
    await health.check();
    now -= 1; // a wall clock set back (NTP)
    await health.check();
    expect(ping).toHaveBeenCalledTimes(2);
  });
});

describe('HealthMonitor: what a result says, to the letter', () => {
  it.each([
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ['a plain object', {}, '[object Object]'],
    ['an object with a name only', { name: 'AbortError' }, 'AbortError'],
    ['an object with an empty name', { name: '', message: '' }, '[object Object]'],
  ])('gives the error text of a check that rejects with %s', async (_what, reason, text) => {
    const report = await new HealthMonitor().addCheck('db', () => Promise.reject(reason)).check();
    expect(report.checks['db']).toMatchObject({ status: 'fail', error: text });
    expect(report.checks['db']?.cause).toBe(reason);
  });

  it('passes a check that returns null, and one that returns a plain object, at once', async () => {
    let time = 1_000;
    const clock = { now: () => time, setTimeout: () => 0, clearTimeout: () => {} };
    const health = new HealthMonitor({ clock })
      .addCheck('null', () => null)
      .addCheck('rows', () => ({ rows: [] }))
      .addCheck('blocking', () => {
        time += 50; // synchronous work of the next check: not part of the others' durations
        return true;
      });
    const report = await health.check();
    expect(report.checks['null']).toMatchObject({ status: 'pass', durationMs: 0 });
    expect(report.checks['rows']).toMatchObject({ status: 'pass', durationMs: 0 });
    expect(report.status).toBe('healthy');
  });

  it('awaits a function that is a thenable, like any promise-like', async () => {
    const thenable = Object.assign(() => true, {
      then: (_resolve: unknown, reject: (error: unknown) => void) => reject(new Error('rejected by a callable thenable')),
    });
    const report = await new HealthMonitor().addCheck('db', () => thenable).check();
    expect(report.checks['db']).toMatchObject({ status: 'fail', error: 'rejected by a callable thenable' });
  });

  it('aborts a timed-out check with a TimeoutError naming the check and its timeout', async () => {
    const clock = new CountingClock();
    let signal: AbortSignal | undefined;
    const health = new HealthMonitor({ clock }).addCheck('db', (context) => {
      signal = context.signal;
      return hang();
    }, { timeout: 250 });
    const report = track(health.check());
    await clock.advance(250);
    const reason = signal?.reason as DOMException;
    expect([reason.name, reason.message]).toEqual(['TimeoutError', 'Health check "db" timed out after 250 ms']);
    expect(report.value?.checks['db']?.cause).toBe(reason);
  });

  it('says "circuit isolated" for an isolated breaker', async () => {
    const report = await new HealthMonitor().addCircuitBreaker('payments', fakeBreaker('isolated')).check();
    expect(report.checks['payments']).toMatchObject({ status: 'fail', error: 'circuit isolated', details: { state: 'isolated' } });
  });

  it('leaves out of the details a stats() that returns a promise, and reports its rejection', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const broken = new Error('stats unavailable');
    const breaker = { state: 'closed' as const, stats: () => Promise.reject(broken) };
    const report = await new HealthMonitor().addCircuitBreaker('payments', breaker).check();
    expect(report.checks['payments']?.details).toEqual({ state: 'closed' });
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(reported).toHaveBeenCalledWith('bulwark: the stats() of circuit breaker "payments" failed', broken);
    reported.mockRestore();
  });
});
