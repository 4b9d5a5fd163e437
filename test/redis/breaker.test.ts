/**
 * RedisCircuitBreaker against a real redis-server, with ioredis and with node-redis: local
 * decisions from a shared view, batched reports, pushes, fleet-wide half-open trials, cold
 * replicas, and the store's failure modes (stopped, paused with SIGSTOP, restarted).
 */
import { describe, expect, it, vi } from 'vitest';
import { CircuitOpenError, MetricsRegistry, compose, logPolicyEvents, Bulkhead, BulkheadRejectedError, LayerPolicy, type PolicyDescription, type PolicyLogger } from '../../src/index.js';
import { HealthMonitor } from '../../src/health/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';
import { RedisCircuitBreaker, RedisStoreError, type RedisCircuitBreakerOptions } from '../../src/redis/index.js';
import { settle, useRedisServer, type Family, type TestClient } from './clients.js';
import { RedisServer } from './server.js';

const { client } = useRedisServer();
let unique = 0;
const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));
const ok = (): string => 'ran';
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A Redis timeout for replicas of tests where Redis never fails: the default 100 ms expires on a loaded machine, and the replica would decide locally. */
const PATIENT = 2_000;

/** The client, with its script calls counted (round trips to Redis). */
function counted(c: TestClient): { client: never; trips: () => number } {
  let trips = 0;
  const target = c.client as unknown as Record<string, unknown>;
  const proxy = new Proxy(target, {
    get(object, property) {
      const value = object[property as string];
      if (typeof value !== 'function') return value;
      if (typeof property === 'string' && /^eval/i.test(property)) {
        return (...args: unknown[]) => {
          trips++;
          return (value as (...a: unknown[]) => unknown).apply(object, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(object);
    },
  });
  return { client: proxy as never, trips: () => trips };
}

/**
 * An ioredis client whose script calls are counted by operation (`sync`, `trial`, `done`…), sent
 * and answered, and whose next call of an operation can be made to fail (`failNext('trial')`),
 * as a dropped connection would.
 */
function scripted(c: TestClient): { client: never; trips: (op: string) => number; answered: (op: string) => number; failNext: (op: string) => void } {
  const trips = new Map<string, number>();
  const answers = new Map<string, number>();
  const failing = new Set<string>();
  const target = c.client as unknown as Record<string, unknown>;
  const proxy = new Proxy(target, {
    get(object, property) {
      const value = object[property as string];
      if (typeof value !== 'function') return value;
      if (property !== 'evalsha' && property !== 'eval') return (value as (...a: unknown[]) => unknown).bind(object);
      return (...args: unknown[]) => {
        const op = String(args[2 + Number(args[1])]);
        trips.set(op, (trips.get(op) ?? 0) + 1);
        if (failing.delete(op)) return Promise.reject(new Error(`${op} lost by the test`));
        const sent = (value as (...a: unknown[]) => Promise<unknown>).apply(object, args);
        const done = () => void answers.set(op, (answers.get(op) ?? 0) + 1);
        sent.then(done, done);
        return sent;
      };
    },
  });
  return { client: proxy as never, trips: (op) => trips.get(op) ?? 0, answered: (op) => answers.get(op) ?? 0, failNext: (op) => void failing.add(op) };
}

type Options = Partial<RedisCircuitBreakerOptions>;

describe.each<Family>(['ioredis', 'node-redis'])('RedisCircuitBreaker with %s', (family) => {
  async function replica(name: string, options: Options = {}, push = true): Promise<RedisCircuitBreaker> {
    const subscriber = push ? (await client(family)).client : undefined;
    const breaker = new RedisCircuitBreaker((await client(family)).client, { name, failureThreshold: 3, recoveryTimeout: 60_000, subscriber, timeout: PATIENT, ...options });
    return breaker;
  }
  /** Waits until the breaker's view says `state` (pushed, or read by its own calls). */
  async function until(breaker: RedisCircuitBreaker, state: string): Promise<void> {
    await vi.waitFor(() => expect(breaker.state).toBe(state), { timeout: 2_000, interval: 2 });
  }
  /** Waits until the breaker's view has seen the circuit open: a break of a few ms may read half-open already on a loaded machine. */
  async function opened(breaker: RedisCircuitBreaker): Promise<void> {
    await vi.waitFor(() => expect(breaker.stats().consecutiveOpens).toBe(1), { timeout: 2_000, interval: 2 });
  }

  it('a cold replica learns an open circuit with its first call, and refuses it', async () => {
    const name = `cold-${family}-${unique++}`;
    const a = await replica(name);
    for (let i = 0; i < 3; i++) await settle(a.execute(boom));
    await until(a, 'open');
    const b = await replica(name);
    const ran = vi.fn(ok);
    const answer = await settle(b.execute(ran));
    expect(ran).not.toHaveBeenCalled();
    expect('error' in answer && answer.error).toBeInstanceOf(CircuitOpenError);
    const error = (answer as { error: CircuitOpenError }).error;
    expect(error.state).toBe('open');
    expect(error.retryAfter).toBeGreaterThan(55_000);
    expect(error.retryAfter).toBeLessThanOrEqual(60_000);
    expect(b.stats()).toMatchObject({ state: 'open', consecutiveOpens: 1 });
  });

  it('failures spread over replicas open it for all: each reports its own, the fleet counts them together', async () => {
    const name = `spread-${family}-${unique++}`;
    const replicas = await Promise.all([0, 1, 2].map(() => replica(name, { syncInterval: 20 })));
    // Every replica starts closed and admits calls with no round trip once its view is read.
    await Promise.all(replicas.map((r) => r.execute(ok)));
    // One failure on each: no replica alone reaches the threshold of 3.
    await Promise.all(replicas.map((r) => settle(r.execute(boom))));
    for (const r of replicas) await until(r, 'open');
    for (const r of replicas) expect((await settle(r.execute(ok))) as { error: unknown }).toMatchObject({ error: expect.any(CircuitOpenError) });
  });

  it('a change made by one replica reaches the others by push: they refuse without a round trip of their own', async () => {
    const name = `push-${family}-${unique++}`;
    const a = await replica(name, { syncInterval: 10_000 });
    const bClient = counted(await client(family));
    const b = new RedisCircuitBreaker(bClient.client, { name, failureThreshold: 3, subscriber: (await client(family)).client, timeout: PATIENT });
    await b.execute(ok); // reads the state once
    await vi.waitFor(() => expect(b.stats().state).toBe('closed'));
    await a.execute(ok);
    const tripsBefore = bClient.trips();
    const changes: string[] = [];
    b.on('stateChange', ({ from, to, reason }) => changes.push(`${from}→${to} ${reason}`));
    // Three failures in a row on A: the third could open the circuit, so it is reported at once (syncInterval is 10 s).
    for (let i = 0; i < 3; i++) await settle(a.execute(boom));
    await until(b, 'open');
    expect(changes).toEqual(['closed→open failure-threshold']);
    expect(bClient.trips()).toBe(tripsBefore);
    expect(await settle(b.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
    expect(bClient.trips()).toBe(tripsBefore);
  });

  it('without a subscriber, a replica learns changes from its reports and refreshes a view older than two sync intervals before deciding', async () => {
    const name = `poll-${family}-${unique++}`;
    const a = await replica(name, { syncInterval: 20 }, false);
    const b = await replica(name, { syncInterval: 20 }, false);
    await b.execute(ok);
    for (let i = 0; i < 3; i++) await settle(a.execute(boom));
    await until(a, 'open');
    await tick(45);
    // B's view is stale: its next call reads the state first, and is refused.
    expect(await settle(b.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
  });

  it('successes on a closed circuit cost no round trip with pushes; failures are batched, at most one report per sync interval', async () => {
    const name = `batch-${family}-${unique++}`;
    const counting = counted(await client(family));
    const breaker = new RedisCircuitBreaker(counting.client, { name, failureThreshold: 1_000, subscriber: (await client(family)).client, syncInterval: 50, timeout: PATIENT });
    await breaker.execute(ok);
    // Pushes are live once the subscription is confirmed and a read follows it: from then on a
    // view older than two sync intervals is no reason to read again.
    await vi.waitFor(async () => {
      const before = counting.trips();
      await tick(120);
      await breaker.execute(ok);
      expect(counting.trips()).toBe(before);
    });
    const base = counting.trips();
    for (let i = 0; i < 1_000; i++) await breaker.execute(ok);
    expect(counting.trips()).toBe(base);
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      await settle(breaker.execute(boom));
      await breaker.execute(ok);
      if (i % 20 === 0) await tick(5);
    }
    await tick(60);
    const elapsed = Date.now() - started;
    expect(counting.trips() - base).toBeGreaterThan(0);
    expect(counting.trips() - base).toBeLessThanOrEqual(Math.ceil(elapsed / 50) + 1);
    expect(breaker.stats().consecutiveFailures).toBe(0);
  });

  it('half-open trials are leased fleet-wide: one trial across three replicas, the others refused, and its success closes the circuit for all', async () => {
    const name = `trial-${family}-${unique++}`;
    const options = { recoveryTimeout: 30, failureThreshold: 1 };
    const replicas = await Promise.all([0, 1, 2].map(() => replica(name, options)));
    await Promise.all(replicas.map((r) => r.execute(ok)));
    await settle(replicas[0]!.execute(boom));
    for (const r of replicas) await opened(r);
    await tick(40);
    let release!: () => void;
    const trialDone = new Promise<void>((resolve) => (release = resolve));
    let running = 0;
    const trial = async () => {
      running++;
      await trialDone;
      return 'recovered';
    };
    const calls = replicas.flatMap((r) => [0, 1, 2, 3, 4].map(() => settle(r.execute(trial))));
    await vi.waitFor(() => expect(running).toBe(1));
    await tick(10);
    expect(running).toBe(1);
    release();
    const answers = await Promise.all(calls);
    expect(answers.filter((answer) => 'value' in answer)).toHaveLength(1);
    const refused = answers.filter((answer) => 'error' in answer).map((answer) => (answer as { error: CircuitOpenError }).error);
    expect(refused).toHaveLength(14);
    for (const error of refused) expect(error).toBeInstanceOf(CircuitOpenError);
    expect(refused.some((error) => error.state === 'half-open')).toBe(true);
    for (const r of replicas) await until(r, 'closed');
    expect(await replicas[2]!.execute(ok)).toBe('ran');
  });

  it('a failed trial opens the circuit again for all, for the next break of recoveryTimeout(opens); its failure event counts it, as Redis then does', async () => {
    const name = `retrial-${family}-${unique++}`;
    const opens: number[] = [];
    const recoveryTimeout = (n: number) => {
      opens.push(n);
      return n === 1 ? 30 : 50_000;
    };
    const a = await replica(name, { recoveryTimeout, failureThreshold: 1 });
    const b = await replica(name, { recoveryTimeout, failureThreshold: 1 });
    const failures: string[] = [];
    a.on('failure', ({ state, consecutiveFailures, error }) => failures.push(`${state} ${consecutiveFailures} ${(error as Error).message}`));
    await b.execute(ok);
    await settle(a.execute(boom));
    await opened(b);
    await tick(40);
    expect(await settle(a.execute(boom))).toMatchObject({ error: { message: 'dependency down' } });
    await until(b, 'open');
    const refused = (await settle(b.execute(ok))) as { error: CircuitOpenError };
    expect(refused.error.retryAfter).toBeGreaterThan(45_000);
    expect(b.stats().consecutiveOpens).toBe(2);
    expect(opens).toContain(2);
    // As the core breaker tells it: the trial's failure is the second in a row, and Redis counts it so.
    expect(failures).toEqual(['closed 1 dependency down', 'half-open 2 dependency down']);
    expect(await (await client(family)).command('HGET', a.key, 'cf')).toBe('2');
  });

  it('a trial whose caller gave up keeps its lease until its work ends; then it is given back uncounted, and a new trial may go', async () => {
    const name = `abandon-${family}-${unique++}`;
    const a = await replica(name, { recoveryTimeout: 20, failureThreshold: 1 });
    const b = await replica(name, { recoveryTimeout: 20, failureThreshold: 1 });
    await b.execute(ok);
    await settle(a.execute(boom));
    await opened(b);
    await tick(30);
    let finish!: () => void;
    const work = new Promise<void>((resolve) => (finish = resolve));
    const controller = new AbortController();
    const stubborn = a.execute(() => work.then(() => 'late'), { signal: controller.signal });
    await vi.waitFor(() => expect(a.stats().state).toBe('half-open'));
    await tick(10);
    controller.abort(new Error('caller gone'));
    expect(await settle(stubborn)).toMatchObject({ error: { message: 'caller gone' } });
    // The abandoned trial still loads the dependency: no other trial yet.
    await tick(150); // past B's trialsFullUntil (syncInterval 100 ms)
    expect(await settle(b.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
    finish();
    await tick(120);
    // Its place is free, and it was not counted: no new opening, and A itself may try again.
    expect(a.stats().consecutiveOpens).toBe(1);
    expect(await a.execute(ok)).toBe('ran');
    await until(b, 'closed');
    expect(await b.execute(ok)).toBe('ran');
  });

  it('a trial that never ends frees the fleet after halfOpenMaxWait: the circuit opens again and a new trial goes', async () => {
    const name = `stuck-${family}-${unique++}`;
    const options = { recoveryTimeout: 20, failureThreshold: 1, halfOpenMaxWait: 60 };
    const a = await replica(name, options);
    const b = await replica(name, options);
    await b.execute(ok);
    await settle(a.execute(boom));
    await tick(30);
    void settle(a.execute(() => new Promise(() => {})));
    await vi.waitFor(() => expect(a.stats().state).toBe('half-open'));
    const changes: string[] = [];
    b.on('stateChange', ({ to, reason }) => changes.push(`${to} ${reason}`));
    await tick(150); // halfOpenMaxWait ends the period; a break of 20 ms follows
    expect(await b.execute(ok)).toBe('ran');
    await until(b, 'closed');
    expect(changes).toContain('closed trial-success');
  });

  it('a failure rate over a shared count window: successes on one replica and failures on another open it', async () => {
    const name = `rate-${family}-${unique++}`;
    const options = { failureThreshold: Infinity, failureRate: { threshold: 0.5, minimumCalls: 10, window: { calls: 10 } }, syncInterval: 20 };
    const a = await replica(name, options);
    const b = await replica(name, options);
    for (let i = 0; i < 5; i++) await a.execute(ok);
    await tick(40);
    for (let i = 0; i < 4; i++) await settle(b.execute(boom));
    await tick(40);
    expect(a.stats()).toMatchObject({ state: 'closed' });
    await settle(b.execute(boom));
    await until(a, 'open');
    expect(b.stats().failureRate).toBeGreaterThanOrEqual(0.5);
  });

  it('a batch is reported at once when, with the shared window as last read, it reaches a rate that opens the circuit, and not before', async () => {
    const name = `rate-now-${family}-${unique++}`;
    const options = { failureThreshold: Infinity, failureRate: { threshold: 0.5, minimumCalls: 10, window: { calls: 10 } }, syncInterval: 60_000 };
    const a = await replica(name, options);
    for (let i = 0; i < 5; i++) await a.execute(ok);
    await a.flush();
    const counting = counted(await client(family));
    const b = new RedisCircuitBreaker(counting.client, { name, ...options, subscriber: (await client(family)).client, timeout: PATIENT });
    await settle(b.execute(boom)); // reads the shared window: 5 calls, no failure
    await vi.waitFor(() => expect(counting.trips()).toBeGreaterThan(0));
    await tick(20);
    const read = counting.trips();
    // 9 calls, 4 failures: below minimumCalls, and 4 of 10 below the threshold after one more success.
    for (let i = 0; i < 3; i++) await settle(b.execute(boom));
    await tick(20);
    expect(counting.trips()).toBe(read);
    expect(a.stats().state).toBe('closed');
    // The 10th call, a failure: 5 of 10 = 0.5, the threshold; reported at once (syncInterval is a minute).
    await settle(b.execute(boom));
    await until(a, 'open');
    expect(counting.trips()).toBe(read + 1);
  });

  it('slow calls: a batch is reported at once when its slow calls reach slowCall.rateThreshold with the shared window', async () => {
    const name = `slow-now-${family}-${unique++}`;
    const options = { failureThreshold: Infinity, failureRate: { threshold: 1, minimumCalls: 4, window: { calls: 10 } }, slowCall: { duration: 5, rateThreshold: 0.5 }, syncInterval: 60_000 };
    const a = await replica(name, options);
    await a.execute(ok);
    await a.execute(ok);
    await a.flush();
    const b = await replica(name, options);
    const changes: string[] = [];
    a.on('stateChange', ({ from, to, reason }) => changes.push(`${from}→${to} ${reason}`));
    await b.execute(() => tick(15)); // 3 calls, 1 slow: nothing to report yet
    await tick(30);
    expect(a.stats().state).toBe('closed');
    await b.execute(() => tick(15)); // 4 calls, 2 slow: 0.5
    await until(a, 'open');
    expect(changes).toEqual(['closed→open slow-call-rate']);
  });

  it('a failure rate over a shared time window, and slow calls counted across replicas', async () => {
    const name = `slow-${family}-${unique++}`;
    const options = { failureThreshold: Infinity, failureRate: { threshold: 1, minimumCalls: 4, window: { duration: 10_000, buckets: 5 } }, slowCall: { duration: 5, rateThreshold: 0.5 }, syncInterval: 20 };
    const a = await replica(name, options);
    const b = await replica(name, options);
    await a.execute(ok);
    await b.execute(ok);
    await a.execute(() => tick(15));
    await tick(60);
    const raw = await client(family);
    // The shared window, as Redis holds it: both replicas' calls in one bucket.
    expect(await raw.command('HMGET', a.key, 'state', 'wc', 'wf', 'ws')).toEqual(['closed', '3', '0', '1']);
    const reasons: string[] = [];
    a.on('stateChange', ({ to, reason }) => reasons.push(`${to} ${reason}`));
    await b.execute(() => tick(15));
    await until(a, 'open');
    // Opened by b's slow call, the second of four: a hears why (its counts are those of its last answer until it asks again).
    expect(reasons).toEqual(['open slow-call-rate']);
    // b's counts are those of the answer to its report, which may come after the push.
    await vi.waitFor(() => expect(b.stats().slowCallRate).toBe(0.5), { timeout: PATIENT, interval: 2 });
  });

  it('sorts outcomes like the core breaker: isFailure, isFailureResult, refusals and aborts not counted, a predicate that throws or returns a promise', async () => {
    const name = `classify-${family}-${unique++}`;
    const b = await replica(name, {
      failureThreshold: 2,
      isFailure: (error) => (error as Error).message !== 'not found',
      isFailureResult: (value) => value === 503,
      syncInterval: 10,
    });
    await b.execute(ok);
    expect(await settle(b.execute(() => Promise.reject(new Error('not found'))))).toMatchObject({ error: { message: 'not found' } });
    const full = new Bulkhead({ maxConcurrent: 1 });
    const stack = compose(b, full);
    const hold = stack.execute(() => tick(20));
    expect(await settle(stack.execute(ok))).toMatchObject({ error: expect.any(BulkheadRejectedError) });
    await hold;
    const controller = new AbortController();
    const aborted = b.execute(() => tick(20).then(() => Promise.reject(new Error('late'))), { signal: controller.signal });
    controller.abort(new Error('gone'));
    await settle(aborted);
    await tick(30);
    expect(b.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    expect(await b.execute(() => 503)).toBe(503);
    const broken = new RedisCircuitBreaker((await client(family)).client, { name: `${name}-async`, isFailure: (async () => true) as never, timeout: PATIENT });
    const answer = (await settle(broken.execute(boom))) as { error: unknown };
    expect(answer.error).toBeInstanceOf(TypeError);
    expect(String((answer.error as Error).message)).toMatch(/isFailure must return its answer synchronously/);
    expect(await b.execute(() => 503)).toBe(503);
    await until(b, 'open');
    expect(b.stats().consecutiveOpens).toBe(1);
  });

  it('isolate() and reset() apply to the whole fleet, announced once where they are called and where they are pushed', async () => {
    const name = `manual-${family}-${unique++}`;
    const a = await replica(name);
    const b = await replica(name);
    await b.execute(ok);
    const changes: string[] = [];
    a.on('stateChange', ({ from, to, reason }) => changes.push(`${from}→${to} ${reason}`));
    const isolating = a.isolate();
    expect(a.state).toBe('isolated'); // at once on this replica, before Redis answers
    await isolating;
    expect(changes).toEqual(['closed→isolated manual']);
    await a.isolate(); // already isolated: no change to announce
    expect(changes).toEqual(['closed→isolated manual']);
    await until(b, 'isolated');
    const refused = (await settle(b.execute(ok))) as { error: CircuitOpenError };
    expect(refused.error.state).toBe('isolated');
    expect(refused.error.retryAfter).toBe(Infinity);
    await b.reset();
    await until(a, 'closed');
    expect(changes).toEqual(['closed→isolated manual', 'isolated→closed manual']);
    await a.reset();
    expect(changes).toEqual(['closed→isolated manual', 'isolated→closed manual']);
    expect(await a.execute(ok)).toBe('ran');
  });

  it('100 callers racing on a cold replica share one read of the state', async () => {
    const name = `race-${family}-${unique++}`;
    const counting = counted(await client(family));
    const breaker = new RedisCircuitBreaker(counting.client, { name, timeout: PATIENT });
    const answers = await Promise.all(Array.from({ length: 100 }, () => breaker.execute(ok)));
    expect(answers.every((answer) => answer === 'ran')).toBe(true);
    expect(counting.trips()).toBeLessThanOrEqual(2);
  });

  it('is tracked, exported and logged as a circuit breaker, with the store up or down; a health check reads its state', async () => {
    const name = `observe-${family}-${unique++}`;
    const breaker = await replica(name, { failureThreshold: 1 });
    const registry = new MetricsRegistry();
    registry.track(breaker, { name: 'payments' });
    const lines: string[] = [];
    const log = (level: string) => (fields: object, message: string) => lines.push(`${level} ${message}`);
    const logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') } as unknown as PolicyLogger;
    logPolicyEvents(breaker, logger, { name: 'payments' });
    await settle(breaker.execute(boom));
    await until(breaker, 'open');
    await settle(breaker.execute(ok));
    const text = renderPrometheus(registry.snapshot());
    expect(text).toMatch(/circuit_state\{[^}]*state="open"[^}]*\} 1/);
    expect(text).toMatch(/redis_store_up\{[^}]*\} 1/);
    expect(lines.some((line) => /warn .*opened \(was closed, failure-threshold\)/.test(line))).toBe(true);
    expect(lines.some((line) => /rejected a call/.test(line))).toBe(true);
    const health = new HealthMonitor().addCircuitBreaker('payments', breaker, { critical: true });
    expect((await health.check()).status).toBe('unhealthy');
  });

  it('flush() reports what is pending at once and resolves once Redis has it', async () => {
    const name = `flush-${family}-${unique++}`;
    const a = await replica(name, { syncInterval: 60_000, failureThreshold: 5 });
    await a.execute(ok);
    for (let i = 0; i < 3; i++) await settle(a.execute(boom));
    const raw = await client(family);
    expect(await raw.command('HGET', a.key, 'cf')).toBe('0');
    await a.flush();
    expect(await raw.command('HGET', a.key, 'cf')).toBe('3');
    await a.flush(); // nothing pending: no round trip, no change
    expect(a.stats().consecutiveFailures).toBe(3);
  });

  it('the failure event counts consecutive failures across the fleet: the shared count plus this replica\'s since, reset by a success', async () => {
    const name = `consecutive-${family}-${unique++}`;
    const options = { syncInterval: 60_000, failureThreshold: 100 };
    const a = await replica(name, options);
    const counts: number[] = [];
    a.on('failure', ({ consecutiveFailures }) => counts.push(consecutiveFailures));
    await a.execute(ok);
    await settle(a.execute(boom));
    await settle(a.execute(boom));
    await a.execute(ok);
    await settle(a.execute(boom));
    expect(counts).toEqual([1, 2, 1]);
    await a.flush();
    // A cold replica reads the shared count with its first call, and counts on from it.
    const b = await replica(name, options);
    const fromB: number[] = [];
    b.on('failure', ({ consecutiveFailures }) => fromB.push(consecutiveFailures));
    await settle(b.execute(boom));
    await settle(b.execute(boom));
    await b.execute(ok);
    await settle(b.execute(boom));
    expect(fromB).toEqual([2, 3, 1]);
  });

  it('close() waits for reports already sent: a trial\'s success reaches Redis before the connection may close', async () => {
    const name = `close-trial-${family}-${unique++}`;
    const c = await client(family);
    const a = new RedisCircuitBreaker(c.client, { name, failureThreshold: 1, recoveryTimeout: 50, timeout: PATIENT });
    const b = await replica(name, { failureThreshold: 1, recoveryTimeout: 50 }, false);
    await a.execute(ok);
    await b.execute(ok);
    await settle(a.execute(boom));
    await tick(70);
    expect(await a.execute(ok)).toBe('ran'); // the trial: its success is reported without the caller waiting
    await a.close();
    await c.quit();
    await tick(250);
    expect(await b.execute(ok)).toBe('ran');
    expect(b.state).toBe('closed');
  });

  it('close() reports what is pending, stops listening and arms nothing; later calls decide locally', async () => {
    const name = `close-${family}-${unique++}`;
    const a = await replica(name, { syncInterval: 60_000, failureThreshold: 5 });
    const b = await replica(name, { syncInterval: 60_000 }); // its success is not reported during the test
    await a.execute(ok);
    for (let i = 0; i < 2; i++) await settle(a.execute(boom));
    await a.close();
    await b.execute(ok);
    expect(b.stats().consecutiveFailures).toBe(2);
    expect(a.storeUp).toBe(false);
    expect(await a.execute(ok)).toBe('ran');
    // Decided locally from the state last seen: failures after close() stay on this replica.
    await settle(a.execute(boom));
    expect(a.stats().consecutiveFailures).toBe(1);
    await tick(30);
    await expect((await client(family)).command('HGET', a.key, 'cf')).resolves.toBe('2');
    await a.close();
  });
});

describe.each<Family>(['ioredis', 'node-redis'])('RedisCircuitBreaker edges, with %s', (family) => {
  it('an abort while waiting for the first read, or for a trial lease, answers at once; a lease granted after it is given back', async () => {
    const name = `aborts-${family}-${unique++}`;
    const c = await client(family);
    const cold = new RedisCircuitBreaker(c.client, { name, failureThreshold: 1, recoveryTimeout: 20, timeout: PATIENT });
    const events: string[] = [];
    cold.on('stateChange', ({ from, to, reason }) => events.push(`${from}→${to} ${reason}`));
    cold.on('storeError', ({ error }) => events.push(`storeError ${error.message}`));
    const early = new AbortController();
    const reason = new Error('caller gone');
    const ran = vi.fn(ok);
    const first = cold.execute(ran, { signal: early.signal });
    early.abort(reason);
    expect(await settle(first)).toEqual({ error: reason });
    expect(ran).not.toHaveBeenCalled();
    await settle(cold.execute(boom));
    await vi.waitFor(() => expect(cold.state).not.toBe('closed'));
    await tick(30);
    // Half-open: this call asks for the one trial lease, and leaves before the answer.
    const late = new AbortController();
    const trial = cold.execute(ran, { signal: late.signal });
    late.abort(reason);
    expect(await settle(trial)).toEqual({ error: reason });
    expect(ran).not.toHaveBeenCalled();
    // The lease it may have been granted goes back: the next call gets the trial and closes the circuit.
    await vi.waitFor(async () => expect(await settle(cold.execute(ok))).toEqual({ value: 'ran' }), { timeout: 2_000, interval: 20 });
    // The trial's success closes the circuit once Redis has taken it.
    await vi.waitFor(() => expect(cold.state).toBe('closed'));
    // The lease went back as abandoned: no outcome counted for it, nothing failed on the way.
    expect(events).toEqual(['closed→open failure-threshold', 'open→half-open recovery-timeout', 'half-open→closed trial-success']);
    expect(cold.storeUp).toBe(true);
  });

  it('100 callers racing at half-open on two replicas: halfOpenMaxCalls trials reach the dependency, every call settles once', async () => {
    const name = `herd-${family}-${unique++}`;
    const options = { failureThreshold: 1, recoveryTimeout: 20, halfOpenMaxCalls: 2, halfOpenSuccessThreshold: 2 };
    const a = new RedisCircuitBreaker((await client(family)).client, { name, ...options, subscriber: (await client(family)).client, timeout: PATIENT });
    const b = new RedisCircuitBreaker((await client(family)).client, { name, ...options, subscriber: (await client(family)).client, timeout: PATIENT });
    await b.execute(ok);
    await settle(a.execute(boom));
    await vi.waitFor(() => expect(b.state).not.toBe('closed'));
    await tick(30);
    let reached = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const dependency = async () => {
      reached++;
      await gate;
      return 'up';
    };
    const calls = Array.from({ length: 100 }, (_, i) => settle((i % 2 === 0 ? a : b).execute(dependency)));
    await vi.waitFor(() => expect(reached).toBe(2));
    await tick(20);
    expect(reached).toBe(2);
    release();
    const answers = await Promise.all(calls);
    expect(answers).toHaveLength(100);
    expect(answers.filter((answer) => 'value' in answer)).toHaveLength(2);
    expect(answers.every((answer) => 'value' in answer || (answer as { error: unknown }).error instanceof CircuitOpenError)).toBe(true);
    await vi.waitFor(() => expect(a.state).toBe('closed'));
    await vi.waitFor(() => expect(b.state).toBe('closed'));
  });

  it('listeners that throw or reject are reported and never change a call; extreme valid options work', async () => {
    const reports: unknown[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...args) => void reports.push(args));
    const original = (globalThis as { reportError?: unknown }).reportError;
    (globalThis as { reportError?: unknown }).reportError = undefined;
    try {
      const breaker = new RedisCircuitBreaker((await client(family)).client, {
        name: `extreme-${family}-${unique++}`,
        failureThreshold: Infinity,
        halfOpenMaxCalls: 10_000,
        syncInterval: 1,
        timeout: 2 ** 31 - 1,
        probeInterval: 2 ** 31 - 1,
        halfOpenMaxWait: Infinity,
        failureRate: { threshold: 1, minimumCalls: 1, window: { duration: 1, buckets: 1 } },
      });
      breaker.on('success', () => {
        throw new Error('listener broke');
      });
      breaker.on('failure', async () => {
        throw new Error('async listener broke');
      });
      expect(await breaker.execute(ok)).toBe('ran');
      expect(await settle(breaker.execute(boom))).toMatchObject({ error: { message: 'dependency down' } });
      await tick(10);
      expect(reports.length).toBeGreaterThanOrEqual(2);
      await breaker.close();
    } finally {
      (globalThis as { reportError?: unknown }).reportError = original;
      spy.mockRestore();
    }
  });

  it('a replica of a breaker that never opens on failures alone (failureThreshold: Infinity, no window) keeps every success and failure local', async () => {
    const counting = counted(await client(family));
    const breaker = new RedisCircuitBreaker(counting.client, { name: `never-${family}-${unique++}`, failureThreshold: Infinity, subscriber: (await client(family)).client, syncInterval: 5, timeout: PATIENT });
    await breaker.execute(ok);
    for (let i = 0; i < 50; i++) await settle(breaker.execute(boom));
    await vi.waitFor(() => expect(breaker.stats().consecutiveFailures).toBe(50)); // reported within a few sync intervals
    expect(breaker.state).toBe('closed');
  });
});

describe.each<Family>(['ioredis', 'node-redis'])('RedisCircuitBreaker when Redis fails, with %s', (family) => {
  it('Redis stopped: calls go on with a local breaker started from the shared state; storeDown, then storeUp and the shared state wins', async () => {
    const server = await RedisServer.start();
    try {
      const c = await client(family, server.port);
      const breaker = new RedisCircuitBreaker(c.client, { name: 'down', failureThreshold: 2, recoveryTimeout: 60_000, timeout: 50, probeInterval: 30 });
      const events: string[] = [];
      breaker.on('storeDown', () => events.push('down'));
      breaker.on('storeUp', () => events.push('up'));
      breaker.on('stateChange', ({ to, reason }) => events.push(`${to} ${reason}`));
      const failures: string[] = [];
      breaker.on('failure', ({ state, consecutiveFailures }) => failures.push(`${state} ${consecutiveFailures}`));
      expect(await breaker.execute(ok)).toBe('ran');
      await server.stop();
      expect(await breaker.execute(ok)).toBe('ran');
      await vi.waitFor(() => expect(breaker.storeUp).toBe(false));
      expect(await breaker.execute(ok)).toBe('ran');
      await settle(breaker.execute(boom));
      await settle(breaker.execute(boom));
      expect(breaker.state).toBe('open');
      // Counted by the local breaker: each failure event tells the count with it, as the core breaker's does.
      expect(failures).toEqual(['closed 1', 'closed 2']);
      expect(await settle(breaker.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
      await server.start();
      await vi.waitFor(() => expect(breaker.storeUp).toBe(true), { timeout: 5_000 });
      // The shared state (closed: nobody reported the local failures) wins.
      expect(breaker.state).toBe('closed');
      expect(await breaker.execute(ok)).toBe('ran');
      expect(events).toEqual(['down', 'open failure-threshold', 'up', 'closed restored']);
    } finally {
      await server.close();
    }
  });

  it('a cold replica whose Redis never answered: the local breaker decides from a closed circuit, and its changes are announced', async () => {
    const server = await RedisServer.start();
    try {
      const c = await client(family, server.port);
      await server.stop();
      const breaker = new RedisCircuitBreaker(c.client, { name: 'never-up', failureThreshold: 2, recoveryTimeout: 60_000, timeout: 50, probeInterval: 10_000 });
      const changes: string[] = [];
      breaker.on('stateChange', ({ from, to, reason }) => changes.push(`${from}→${to} ${reason}`));
      expect(await breaker.execute(ok)).toBe('ran');
      expect(breaker.storeUp).toBe(false);
      await settle(breaker.execute(boom));
      await settle(breaker.execute(boom));
      expect(breaker.state).toBe('open');
      expect(changes).toEqual(['closed→open failure-threshold']);
      expect(await settle(breaker.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
    } finally {
      await server.close();
    }
  });

  it('Redis stopped while the circuit is open: the local breaker goes on open until the shared retryAt, quietly; isolate() and reset() apply to it, announced', async () => {
    const server = await RedisServer.start();
    try {
      const c = await client(family, server.port);
      const breaker = new RedisCircuitBreaker(c.client, { name: 'down-open', failureThreshold: 1, recoveryTimeout: 60_000, timeout: 50, probeInterval: 30, syncInterval: 20 });
      await settle(breaker.execute(boom));
      await vi.waitFor(() => expect(breaker.state).toBe('open'), { timeout: 2_000, interval: 2 });
      const changes: string[] = [];
      breaker.on('stateChange', ({ from, to, reason }) => changes.push(`${from}→${to} ${reason}`));
      await server.stop();
      await vi.waitFor(
        async () => {
          await settle(breaker.execute(ok));
          expect(breaker.storeUp).toBe(false);
        },
        { timeout: 2_000, interval: 5 },
      );
      expect(breaker.state).toBe('open');
      const rejected: CircuitOpenError[] = [];
      breaker.on('rejected', ({ error }) => rejected.push(error));
      const ran = vi.fn(ok);
      const refused = (await settle(breaker.execute(ran))) as { error: CircuitOpenError };
      expect(rejected).toEqual([refused.error]);
      expect(ran).not.toHaveBeenCalled();
      expect(refused.error).toBeInstanceOf(CircuitOpenError);
      expect(refused.error.state).toBe('open');
      expect(refused.error.retryAfter).toBeGreaterThan(55_000);
      expect(refused.error.retryAfter).toBeLessThanOrEqual(60_000);
      expect(changes).toEqual([]); // for the callers nothing changed
      // The fleet does not have the change: Redis did not answer. This replica holds it meanwhile.
      const notShared = async (change: Promise<void>) => {
        const error = await change.then(() => 'resolved', (reason: unknown) => reason);
        expect(error).toBeInstanceOf(RedisStoreError);
        expect((error as Error).message).toMatch(/^RedisCircuitBreaker: Redis (did not answer within 50 ms|failed: .+)$/);
      };
      const isolating = breaker.isolate();
      expect(breaker.state).toBe('isolated');
      // Announced as the core breaker announces them (logs, metrics and health read these events); once each.
      expect(changes).toEqual(['open→isolated manual']);
      await notShared(isolating);
      await notShared(breaker.isolate());
      expect(changes).toEqual(['open→isolated manual']);
      const isolated = (await settle(breaker.execute(ran))) as { error: CircuitOpenError };
      expect(isolated.error).toBeInstanceOf(CircuitOpenError);
      expect(isolated.error.state).toBe('isolated');
      expect(rejected).toEqual([refused.error, isolated.error]);
      const resetting = breaker.reset();
      expect(breaker.state).toBe('closed');
      expect(changes).toEqual(['open→isolated manual', 'isolated→closed manual']);
      await notShared(resetting);
      await notShared(breaker.reset());
      expect(changes).toEqual(['open→isolated manual', 'isolated→closed manual']);
      expect(await breaker.execute(ran)).toBe('ran');
      expect(ran).toHaveBeenCalledTimes(1);
    } finally {
      await server.close();
    }
  });

  it('isolate() while Redis is down asks Redis all the same: back before the probe noticed, the fleet has it and the replica is shared again', async () => {
    const server = await RedisServer.start();
    try {
      const c = await client(family, server.port);
      const breaker = new RedisCircuitBreaker(c.client, { name: 'isolate-back', timeout: 200, probeInterval: 60_000 });
      const events: string[] = [];
      breaker.on('storeUp', () => events.push('up'));
      breaker.on('stateChange', ({ from, to, reason }) => events.push(`${from}→${to} ${reason}`));
      expect(await breaker.execute(ok)).toBe('ran');
      await server.stop();
      await vi.waitFor(
        async () => {
          await settle(breaker.execute(ok));
          expect(breaker.storeUp).toBe(false);
        },
        { timeout: PATIENT, interval: 5 },
      );
      await server.start(); // the probe would look again only in a minute
      await vi.waitFor(() => c.command('PING'), { timeout: PATIENT, interval: 10 });
      await breaker.isolate();
      expect(breaker.storeUp).toBe(true);
      expect(breaker.state).toBe('isolated');
      expect(events).toEqual(['closed→isolated manual', 'up']);
      expect(await c.command('HGET', '{bulwark:isolate-back}:breaker', 'state')).toBe('isolated');
      const other = new RedisCircuitBreaker((await client(family, server.port)).client, { name: 'isolate-back', timeout: PATIENT });
      expect(((await settle(other.execute(ok))) as { error: CircuitOpenError }).error.state).toBe('isolated');
    } finally {
      await server.close();
    }
  });

  it('Redis paused (SIGSTOP): a cold replica waits no longer than the timeout, then decides locally', async () => {
    const server = await RedisServer.start();
    try {
      const breaker = new RedisCircuitBreaker((await client(family, server.port)).client, { name: 'paused', timeout: 40 });
      server.pause();
      const started = Date.now();
      const answers = await Promise.all(Array.from({ length: 20 }, () => breaker.execute(ok)));
      expect(answers.every((answer) => answer === 'ran')).toBe(true);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(breaker.storeUp).toBe(false);
      server.resume();
    } finally {
      await server.close();
    }
  });

  it('Redis restarted (state and script cache lost): nothing fails; the fleet starts from a closed circuit', async () => {
    const server = await RedisServer.start();
    try {
      const c = await client(family, server.port);
      const breaker = new RedisCircuitBreaker(c.client, { name: 'restart', failureThreshold: 1, subscriber: (await client(family, server.port)).client });
      await settle(breaker.execute(boom));
      await vi.waitFor(() => expect(breaker.state).toBe('open'));
      await c.command('SCRIPT', 'FLUSH');
      await server.restart();
      // The subscriber reconnects; the view is read again; the lost state is closed.
      await vi.waitFor(async () => {
        await settle(breaker.execute(ok));
        expect(breaker.state).toBe('closed');
      }, { timeout: 5_000, interval: 50 });
      expect(await breaker.execute(ok)).toBe('ran');
    } finally {
      await server.close();
    }
  });
});

describe('RedisCircuitBreaker decisions, with ioredis', () => {
  async function replica(name: string, options: Partial<RedisCircuitBreakerOptions> = {}, push = true) {
    const subscriber = push ? (await client('ioredis')).client : undefined;
    const link = scripted(await client('ioredis'));
    const breaker = new RedisCircuitBreaker(link.client, { name, failureThreshold: 1, recoveryTimeout: 30, subscriber, timeout: PATIENT, ...options });
    return Object.assign(link, { breaker });
  }
  async function opened(breaker: RedisCircuitBreaker, opens = 1): Promise<void> {
    await vi.waitFor(() => expect(breaker.stats().consecutiveOpens).toBe(opens), { timeout: 2_000, interval: 2 });
  }
  const halfOpenRefusal = (answer: unknown) => {
    const error = (answer as { error: CircuitOpenError }).error;
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect({ message: error.message, state: error.state, retryAfter: error.retryAfter }).toEqual({ message: 'Circuit is half-open and every trial slot is taken', state: 'half-open', retryAfter: 0 });
  };

  it('at half-open a replica asks Redis for one trial at a time: while its trial runs, or for a sync interval after Redis said every trial was taken, it refuses without a round trip', async () => {
    const name = `one-ask-${unique++}`;
    const a = await replica(name, { syncInterval: 300 });
    const b = await replica(name, { syncInterval: 300 });
    await a.breaker.execute(ok);
    await b.breaker.execute(ok);
    await settle(a.breaker.execute(boom));
    await opened(a.breaker);
    await opened(b.breaker);
    await tick(40);
    let fail!: (error: Error) => void;
    const gate = new Promise<never>((_, reject) => (fail = reject));
    let reached = 0;
    const dependency = () => {
      reached++;
      return gate;
    };
    // Two calls at once on A: the first asks for the trial, the second is refused while that ask is on its way.
    const asked = a.trips('trial');
    const trial = settle(a.breaker.execute(dependency));
    halfOpenRefusal(await settle(a.breaker.execute(dependency)));
    await vi.waitFor(() => expect(reached).toBe(1));
    halfOpenRefusal(await settle(a.breaker.execute(dependency))); // its own trial runs: refused here
    expect(a.trips('trial')).toBe(asked + 1);
    // B asks, and hears every trial is taken; a caller who left meanwhile hears nothing.
    const rejected: CircuitOpenError[] = [];
    b.breaker.on('rejected', ({ error }) => rejected.push(error));
    const leaving = new AbortController();
    const left = b.breaker.execute(dependency, { signal: leaving.signal });
    leaving.abort(new Error('caller gone'));
    expect(await settle(left)).toEqual({ error: new Error('caller gone') });
    await vi.waitFor(() => expect(b.answered('trial')).toBe(1));
    expect(rejected).toEqual([]);
    const refused = await settle(b.breaker.execute(dependency));
    halfOpenRefusal(refused);
    expect(b.trips('trial')).toBe(2);
    // For a sync interval, B refuses without asking again.
    halfOpenRefusal(await settle(b.breaker.execute(dependency)));
    expect(b.trips('trial')).toBe(2);
    expect(rejected).toHaveLength(2);
    expect(rejected[0]).toBe((refused as { error: unknown }).error);
    // A's trial fails: open again; after the break, A's next call is the trial.
    fail(new Error('still down'));
    expect(await trial).toEqual({ error: new Error('still down') });
    await opened(a.breaker, 2);
    await tick(40);
    // Its last trial's place is free again, and no more: one ask, the second call refused without one.
    const again = a.trips('trial');
    const next = a.breaker.execute(ok);
    halfOpenRefusal(await settle(a.breaker.execute(ok)));
    expect(await next).toBe('ran');
    expect(a.trips('trial')).toBe(again + 1);
    await vi.waitFor(() => expect(b.breaker.state).toBe('closed'));
    expect(reached).toBe(1);
  });

  it('time edges on this replica\'s clock: a view exactly two sync intervals old is still fresh, one ms older is read again; a call exactly slowCall.duration long is not slow, one ms longer is', async () => {
    vi.useFakeTimers({ toFake: ['Date'] }); // only Date: Redis and its clients run on real timers
    try {
      const start = Date.now();
      const options = { syncInterval: 60_000, failureThreshold: Infinity, failureRate: { threshold: 1, minimumCalls: 100, window: { calls: 100 } }, slowCall: { duration: 50, rateThreshold: 1 } };
      const a = await replica(`edges-${unique++}`, options, false);
      await a.breaker.execute(ok);
      const reads = a.trips('sync');
      vi.setSystemTime(start + 120_000);
      await a.breaker.execute(ok);
      expect(a.trips('sync')).toBe(reads);
      vi.setSystemTime(start + 120_001);
      await a.breaker.execute(ok);
      expect(a.trips('sync')).toBe(reads + 1);
      const lasting = (ms: number) => () => {
        vi.setSystemTime(Date.now() + ms);
        return 'done';
      };
      await a.breaker.execute(lasting(50));
      await a.breaker.flush();
      expect(a.breaker.stats()).toMatchObject({ calls: 4, slowCalls: 0 });
      await a.breaker.execute(lasting(51));
      await a.breaker.flush();
      expect(a.breaker.stats()).toMatchObject({ calls: 5, slowCalls: 1 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('after Redis said every trial was taken, a replica refuses half-open calls without asking for one sync interval, and asks again once it has passed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] }); // this replica's clock only: Redis runs on its own
    try {
      const name = `full-for-${unique++}`;
      const a = await replica(name, { syncInterval: 300 });
      const b = await replica(name, { syncInterval: 300 });
      await a.breaker.execute(ok);
      await b.breaker.execute(ok);
      await settle(a.breaker.execute(boom));
      await opened(a.breaker);
      await opened(b.breaker);
      await tick(40); // the break ends on the server's clock…
      vi.setSystemTime(Date.now() + 5_000); // …and on the replicas'
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let running = false;
      const trial = a.breaker.execute(() => {
        running = true;
        return gate;
      });
      await vi.waitFor(() => expect(running).toBe(true)); // A holds the only trial
      halfOpenRefusal(await settle(b.breaker.execute(ok)));
      expect(b.trips('trial')).toBe(1);
      const refusedAt = Date.now();
      vi.setSystemTime(refusedAt + 299);
      halfOpenRefusal(await settle(b.breaker.execute(ok)));
      expect(b.trips('trial')).toBe(1);
      vi.setSystemTime(refusedAt + 300);
      halfOpenRefusal(await settle(b.breaker.execute(ok)));
      expect(b.trips('trial')).toBe(2);
      release();
      await trial;
    } finally {
      vi.useRealTimers();
    }
  });

  it('a replica whose clock runs ahead of the server\'s: refused as open by Redis, it asks for a trial again as soon as its view turns half-open', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const name = `ahead-${unique++}`;
      const a = await replica(name, { recoveryTimeout: 1_000, syncInterval: 60_000 });
      await settle(a.breaker.execute(boom));
      await opened(a.breaker);
      vi.setSystemTime(Date.now() + 5_000); // half-open here, still open on the server
      expect(a.breaker.state).toBe('half-open');
      const refused = (await settle(a.breaker.execute(ok))) as { error: CircuitOpenError };
      expect(refused.error).toBeInstanceOf(CircuitOpenError);
      expect(refused.error.state).toBe('open');
      expect(a.trips('trial')).toBe(1);
      await tick(1_020); // the server's break ends
      vi.setSystemTime(Date.now() + refused.error.retryAfter + 1);
      expect(await a.breaker.execute(ok)).toBe('ran');
      expect(a.trips('trial')).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('an outcome of a call admitted before a change is stale news: no failure event, not counted', async () => {
    const name = `stale-${unique++}`;
    const a = await replica(name, { recoveryTimeout: 60_000, syncInterval: 20 });
    const b = await replica(name, { recoveryTimeout: 60_000 });
    await a.breaker.execute(ok);
    await b.breaker.execute(ok);
    const failures: number[] = [];
    a.breaker.on('failure', ({ consecutiveFailures }) => failures.push(consecutiveFailures));
    let fail!: (error: Error) => void;
    const slow = settle(a.breaker.execute(() => new Promise((_, reject) => (fail = reject))));
    await settle(b.breaker.execute(boom)); // opens it for the fleet
    await opened(a.breaker);
    await a.breaker.reset();
    fail(new Error('late failure'));
    expect(await slow).toEqual({ error: new Error('late failure') });
    await tick(60);
    expect(failures).toEqual([]);
    expect(a.breaker.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
  });

  it('Redis lost while callers wait for a fresh view at half-open: the local breaker gives its trial to a caller who stayed, none to one who left', async () => {
    const a = await replica(`stale-lost-${unique++}`, { syncInterval: 20 }, false);
    await settle(a.breaker.execute(boom));
    await opened(a.breaker);
    await tick(50); // half-open, and the view older than two sync intervals
    a.failNext('sync');
    const early = new AbortController();
    const ran = vi.fn(ok);
    const gone = a.breaker.execute(ran, { signal: early.signal });
    const stayed = a.breaker.execute(ran);
    early.abort(new Error('caller gone'));
    expect(await settle(gone)).toEqual({ error: new Error('caller gone') });
    expect(await stayed).toBe('ran');
    expect(ran).toHaveBeenCalledTimes(1);
    expect(a.breaker.storeUp).toBe(false);
  });

  it('a replica that missed a change hears the fleet\'s answer when it asks for a trial: closed again runs the call, open again refuses with the new break, isolated refuses as isolated', async () => {
    const name = `missed-${unique++}`;
    const recoveryTimeout = (opens: number) => (opens === 2 ? 50_000 : 300); // long enough for a loaded machine to see it open
    const a = await replica(name, { recoveryTimeout, syncInterval: 60_000 }, false); // polls, rarely
    const b = await replica(name, { recoveryTimeout });
    await a.breaker.execute(ok);
    await b.breaker.execute(ok);
    // B's trial closes the circuit; A still sees it half-open.
    await settle(a.breaker.execute(boom));
    await opened(b.breaker);
    await tick(320);
    expect(await b.breaker.execute(ok)).toBe('ran');
    await vi.waitFor(() => expect(b.breaker.state).toBe('closed'));
    expect(a.breaker.state).toBe('half-open');
    expect(await a.breaker.execute(ok)).toBe('ran');
    expect(a.breaker.state).toBe('closed');
    // B's failed trial opens it again for 50 s while A's view turns half-open.
    await settle(a.breaker.execute(boom));
    await opened(b.breaker);
    await tick(320);
    await settle(b.breaker.execute(boom));
    await opened(b.breaker, 2);
    expect(a.breaker.state).toBe('half-open');
    const open = (await settle(a.breaker.execute(ok))) as { error: CircuitOpenError };
    expect(open.error).toBeInstanceOf(CircuitOpenError);
    expect(open.error.state).toBe('open');
    expect(open.error.retryAfter).toBeGreaterThan(45_000);
    expect(open.error.retryAfter).toBeLessThanOrEqual(50_000);
    expect(open.error.message).toBe(`Circuit is open: next trial in ${Math.ceil(open.error.retryAfter)} ms`);
    // B isolates it while C's view turns half-open.
    await b.breaker.reset();
    await settle(b.breaker.execute(boom));
    const c = await replica(name, { recoveryTimeout, syncInterval: 60_000 }, false);
    expect(await settle(c.breaker.execute(ok))).toMatchObject({ error: { state: 'open' } });
    await b.breaker.isolate();
    await tick(320);
    expect(c.breaker.state).toBe('half-open');
    const isolated = (await settle(c.breaker.execute(ok))) as { error: CircuitOpenError };
    expect(isolated.error).toBeInstanceOf(CircuitOpenError);
    expect({ message: isolated.error.message, state: isolated.error.state, retryAfter: isolated.error.retryAfter }).toEqual({ message: 'Circuit is isolated: calls are refused until reset()', state: 'isolated', retryAfter: Infinity });
  });

  it('a cold replica whose first callers meet a half-open circuit: the one who stayed gets the trial, the one who left is neither refused nor given one', async () => {
    const name = `cold-trial-${unique++}`;
    const a = await replica(name, { recoveryTimeout: 400 });
    await settle(a.breaker.execute(boom));
    await opened(a.breaker);
    // While open: the caller who stayed is refused, and only that refusal is told.
    const b = await replica(name, { recoveryTimeout: 400 }, false);
    const rejected: string[] = [];
    b.breaker.on('rejected', ({ error }) => rejected.push(error.state));
    const early = new AbortController();
    const gone = b.breaker.execute(ok, { signal: early.signal });
    const stayed = b.breaker.execute(ok);
    early.abort(new Error('caller gone'));
    expect(await settle(gone)).toEqual({ error: new Error('caller gone') });
    expect(await settle(stayed)).toMatchObject({ error: { state: 'open' } });
    expect(rejected).toEqual(['open']);
    // Half-open, on a cold replica: the same.
    await tick(420);
    const c = await replica(name, { recoveryTimeout: 400 }, false);
    c.breaker.on('rejected', ({ error }) => rejected.push(error.state));
    const later = new AbortController();
    const ran = vi.fn(ok);
    const left = c.breaker.execute(ran, { signal: later.signal });
    const trial = c.breaker.execute(ran);
    later.abort(new Error('caller gone'));
    expect(await settle(left)).toEqual({ error: new Error('caller gone') });
    expect(await trial).toBe('ran');
    expect(ran).toHaveBeenCalledTimes(1);
    expect(rejected).toEqual(['open']);
    expect(c.trips('trial')).toBe(1);
    await vi.waitFor(() => expect(a.breaker.state).toBe('closed'));
  });

  it('without a subscriber, a view younger than two sync intervals decides calls with no round trip', async () => {
    const a = await replica(`young-${unique++}`, { syncInterval: 60_000 }, false);
    await a.breaker.execute(ok);
    const reads = a.trips('sync');
    for (let i = 0; i < 20; i++) expect(await a.breaker.execute(ok)).toBe('ran');
    await tick(20);
    expect(a.trips('sync')).toBe(reads);
    expect(a.trips('trial')).toBe(0);
  });

  it('Redis lost while a half-open replica asks for a trial: the local breaker, started half-open, gives the call its trial; once Redis is back the replica asks again', async () => {
    const name = `trial-lost-${unique++}`;
    const a = await replica(name, { probeInterval: 20 });
    const downs: string[] = [];
    a.breaker.on('storeDown', ({ error }) => downs.push(error.message));
    await settle(a.breaker.execute(boom));
    await opened(a.breaker);
    await tick(40);
    a.failNext('trial');
    const answer = await Promise.race([a.breaker.execute(ok), tick(1_000).then(() => 'no answer')]);
    expect(answer).toBe('ran');
    expect(downs).toEqual(['RedisCircuitBreaker: Redis failed: trial lost by the test']);
    expect(a.breaker.storeUp).toBe(false);
    await vi.waitFor(() => expect(a.breaker.storeUp).toBe(true));
    // The shared circuit is still half-open (local outcomes are not reported): this replica asks for its trial.
    expect(a.breaker.state).toBe('half-open');
    const asked = a.trips('trial');
    expect(await a.breaker.execute(ok)).toBe('ran');
    expect(a.trips('trial')).toBe(asked + 1);
    await vi.waitFor(() => expect(a.breaker.state).toBe('closed'));
  });

  it('isFailure and isFailureResult decide what the failure event carries: the error, the value, or what the predicate threw; an aborted caller\'s outcome is not counted', async () => {
    const classifierBroke = new Error('isFailure broke');
    const resultClassifierBroke = new Error('isFailureResult broke');
    const a = await replica(`events-${unique++}`, {
      failureThreshold: 100,
      syncInterval: 60_000,
      isFailure: (error) => {
        if ((error as Error).message === 'weird') throw classifierBroke;
        return (error as Error).message !== 'not found';
      },
      isFailureResult: (value) => {
        if (value === 'crash') throw resultClassifierBroke;
        return value === 503;
      },
    });
    const events: unknown[] = [];
    a.breaker.on('success', (payload) => events.push(payload));
    a.breaker.on('failure', (payload) => events.push(payload));
    const down = new Error('dependency down');
    expect(await a.breaker.execute(ok)).toBe('ran');
    expect(await settle(a.breaker.execute(() => Promise.reject(new Error('not found'))))).toEqual({ error: new Error('not found') });
    expect(await settle(a.breaker.execute(() => Promise.reject(down)))).toEqual({ error: down });
    expect(await a.breaker.execute(() => 503)).toBe(503);
    expect(await settle(a.breaker.execute(() => Promise.reject(new Error('weird'))))).toEqual({ error: classifierBroke });
    expect(await settle(a.breaker.execute(() => 'crash'))).toEqual({ error: resultClassifierBroke });
    const controller = new AbortController();
    const aborted = a.breaker.execute(() => tick(20).then(() => 503), { signal: controller.signal });
    controller.abort(new Error('caller gone'));
    expect(await settle(aborted)).toEqual({ error: new Error('caller gone') });
    // A policy inside that answers with a value once the caller gave up (its own): not counted either.
    class Substitute extends LayerPolicy {
      protected override onError(): unknown {
        return 503;
      }
      protected describe(): PolicyDescription {
        return { kind: 'substitute', name: undefined };
      }
    }
    const giving = new AbortController();
    const substituted = compose(a.breaker, new Substitute()).execute(() => tick(20).then(() => 'late'), { signal: giving.signal });
    giving.abort(new Error('caller gone'));
    expect(await settle(substituted)).toEqual({ error: new Error('caller gone') });
    await tick(40);
    expect(events).toEqual([
      { state: 'closed' },
      { state: 'closed' },
      { error: down, state: 'closed', consecutiveFailures: 1 },
      { error: undefined, state: 'closed', consecutiveFailures: 2, value: 503 },
      { error: classifierBroke, state: 'closed', consecutiveFailures: 3 },
      { error: resultClassifierBroke, state: 'closed', consecutiveFailures: 4 },
    ]);
    await a.breaker.flush();
    expect(a.breaker.stats().consecutiveFailures).toBe(4);
    const late = new RedisCircuitBreaker((await client('ioredis')).client, { name: `late-${unique++}`, isFailureResult: (async () => true) as never, timeout: PATIENT });
    const refused = (await settle(late.execute(ok))) as { error: Error };
    expect(refused.error).toBeInstanceOf(TypeError);
    expect(refused.error.message).toBe('RedisCircuitBreaker isFailureResult must return its answer synchronously, got a promise (an async function?)');
  });

  it('Redis down, a local trial whose caller gave up holds its place until its work ends; then the next call is the trial', async () => {
    const server = await RedisServer.start();
    try {
      const c = await client('ioredis', server.port);
      await server.stop();
      const breaker = new RedisCircuitBreaker(c.client, { name: 'local-abandon', failureThreshold: 1, recoveryTimeout: 30, timeout: 50, probeInterval: 10_000 });
      await settle(breaker.execute(boom));
      expect(breaker.storeUp).toBe(false);
      await tick(40);
      let finish!: () => void;
      const work = new Promise<void>((resolve) => (finish = resolve));
      const controller = new AbortController();
      const stubborn = breaker.execute(() => work.then(() => 'late'), { signal: controller.signal });
      await tick(5);
      controller.abort(new Error('caller gone'));
      expect(await settle(stubborn)).toEqual({ error: new Error('caller gone') });
      expect((await settle(breaker.execute(ok))) as { error: CircuitOpenError }).toMatchObject({ error: { state: 'half-open' } });
      finish();
      await tick(5);
      expect(await breaker.execute(ok)).toBe('ran');
      expect(breaker.state).toBe('closed');
    } finally {
      await server.close();
    }
  });
});

describe('RedisCircuitBreaker options', () => {
  const fake = { evalsha: async () => [], eval: async () => [] };
  it.each<[string, unknown, RegExp, ErrorConstructor]>([
    ['no options', undefined, /options with a name are required/, TypeError],
    ['no name', {}, /name is required/, TypeError],
    ['an empty name', { name: '' }, /name must be a non-empty string/, RangeError],
    ['initialState', { name: 'x', initialState: {} }, /initialState.*the state lives in Redis/, TypeError],
    ['clock', { name: 'x', clock: {} }, /clock.*time is the Redis server's/, TypeError],
    ['a bad failureThreshold', { name: 'x', failureThreshold: 0 }, /^RedisCircuitBreaker failureThreshold must be .* got 0/, RangeError],
    ['a bad window', { name: 'x', failureRate: { threshold: 2 } }, /^RedisCircuitBreaker failureRate.threshold must be a number in \(0, 1\], got 2/, RangeError],
    ['syncInterval 0', { name: 'x', syncInterval: 0 }, /RedisCircuitBreaker syncInterval must be a finite duration in ms > 0, got 0/, RangeError],
    ['timeout beyond a timer', { name: 'x', timeout: 2 ** 31 }, /RedisCircuitBreaker timeout/, RangeError],
    ['a bad subscriber', { name: 'x', subscriber: 42 }, /subscriber must be a Redis connection/, TypeError],
    ['an unknown key', { name: 'x', syncInteval: 5 }, /syncInteval.*syncInterval/, TypeError],
  ])('refuses %s', (_, options, message, type) => {
    expect(() => new RedisCircuitBreaker(fake as never, options as RedisCircuitBreakerOptions)).toThrow(type);
    expect(() => new RedisCircuitBreaker(fake as never, options as RedisCircuitBreakerOptions)).toThrow(message);
  });

  it('refuses a client of no known shape', () => {
    const refused = (() => {
      try {
        new RedisCircuitBreaker({} as never, { name: 'x' });
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(TypeError);
    expect((refused as TypeError).message).toBe('RedisCircuitBreaker client must be an ioredis, iovalkey or node-redis (v4+) client or cluster (with evalsha/evalSha and eval), got an object');
  });
});
