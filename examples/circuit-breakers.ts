/**
 * One CircuitBreaker example per option, plus stats, saved state and per-key groups. Every
 * snippet is compiled by `npm test` (examples/tsconfig.json), and
 * examples/circuit-breakers.test.ts runs the ones whose behaviour is worth seeing.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/circuit-breakers.ts
 * It drives a flaky dependency through a rate-based breaker and prints each state change.
 */
import {
  CircuitBreaker,
  CircuitBreakerGroup,
  compose,
  isCircuitOpenError,
  withTimeout,
  type CircuitBreakerSnapshot,
  type CircuitBreakerStats,
  type Clock,
} from 'bulwark';
import { runMain } from './is-main.js';

/** An HTTP error as a fetch wrapper might throw it. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`HTTP ${status}`);
    this.status = status;
  }
}

// ── failureThreshold: open after N failures in a row (the seed's rule) ──────────────────
// Simple and right for low traffic: 5 failures in a row rarely happen by chance at a few
// calls a minute.
export const lowTraffic = new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 30_000 });

// ── failureRate over the last N calls ───────────────────────────────────────────────────
// At hundreds of calls a second a run of 5 failures is routine noise; a rate is steadier.
// Open when half of the last 100 calls failed, once 20 calls were seen (not on the first
// unlucky two). With failureRate, failureThreshold is off unless you also give it.
export const byCallCount = new CircuitBreaker({
  failureRate: { threshold: 0.5, minimumCalls: 20, window: { calls: 100 } },
});

// ── failureRate over the last N milliseconds ────────────────────────────────────────────
// A time window forgets old failures even when traffic stops: after a quiet night, last
// evening's errors do not count. 60 s in 12 buckets of 5 s; no timer runs, old buckets are
// dropped when the breaker is used or read.
export const byTime = new CircuitBreaker({
  failureRate: { threshold: 0.25, minimumCalls: 50, window: { duration: 60_000, buckets: 12 } },
});

// ── both: either condition opens ────────────────────────────────────────────────────────
// The rate for a slow rise in errors, a short run of consecutive failures for a hard outage
// that would otherwise wait for minimumCalls.
export const rateOrRun = new CircuitBreaker({
  failureThreshold: 10,
  failureRate: { threshold: 0.5, minimumCalls: 100 },
});

// ── slowCall: calls that succeed, but too slowly ────────────────────────────────────────
// A dependency answering in 4 s instead of 200 ms is failing its callers even with 200 OK.
// Open when 80 % of the window took longer than 2 s. Without failureRate the window is the
// last 100 calls, at least 100 of them.
export const latencySensitive = new CircuitBreaker({
  slowCall: { duration: 2_000, rateThreshold: 0.8 },
  failureRate: { threshold: 0.5, minimumCalls: 20, window: { duration: 30_000 } },
});

// ── recoveryTimeout as a backoff ────────────────────────────────────────────────────────
// A dependency that stays down is probed less and less often: 5 s, 10 s, 20 s … capped at
// 5 min. `opens` is 1 the first time and back to 1 once the circuit closes. Keep the result
// finite (Math.min): a broken value opens the circuit for 30 s and is reported.
export const backingOff = new CircuitBreaker({
  recoveryTimeout: (opens) => Math.min(5_000 * 2 ** (opens - 1), 300_000),
});

// ── halfOpenMaxCalls and halfOpenSuccessThreshold: how cautiously to close ──────────────
// Three trials at once, and ten successes before closing: one lucky trial does not send the
// full load back to a service that is barely up. Every other caller is refused at once while
// half-open, and one failed trial re-opens.
export const cautious = new CircuitBreaker({ halfOpenMaxCalls: 3, halfOpenSuccessThreshold: 10 });

// ── halfOpenMaxWait: a trial that never answers ─────────────────────────────────────────
// Without a timeout inside the breaker, a hung trial would keep it half-open (and every
// caller refused) for good. After 10 s from its first trial without closing, it re-opens.
// The default is the break that just ended; better still, put a timeout inside the breaker.
export const neverStuck = new CircuitBreaker({ recoveryTimeout: 30_000, halfOpenMaxWait: 10_000 });
export const withInnerTimeout = compose(new CircuitBreaker(), withTimeout(2_000));

// ── isFailure: what the dependency's health does not depend on ──────────────────────────
// A 404 or a 422 means the service answered: count it as a success. 429 and 5xx count.
export const clientErrorsAreFine = new CircuitBreaker({
  isFailure: (error) => !(error instanceof HttpError && error.status >= 400 && error.status < 500 && error.status !== 429),
});

// ── name: for logs and metrics ──────────────────────────────────────────────────────────
export const named = new CircuitBreaker({ name: 'payments' });
named.on('stateChange', ({ from, to, reason }) => {
  console.warn(`[${named.name ?? 'breaker'}] ${from} → ${to} (${reason})`);
});

// ── clock: drive a breaker by hand (tests, simulations) ─────────────────────────────────
/** A clock moved by hand; the breaker arms no timer, so `setTimeout` is never called. */
export function handClock(start = Date.now()): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    setTimeout: () => {
      throw new Error('the breaker arms no timer');
    },
    clearTimeout: () => undefined,
    advance(ms: number) {
      now += ms;
    },
  };
}

// ── stats(): what a health check or a dashboard reads ───────────────────────────────────
export function healthOf(breaker: CircuitBreaker): { healthy: boolean; detail: CircuitBreakerStats } {
  const detail = breaker.stats();
  return { healthy: detail.state === 'closed', detail };
}

// ── CircuitOpenError.retryAfter: tell the client when to come back ──────────────────────
export async function handle(breaker: CircuitBreaker, work: () => Promise<string>): Promise<{ status: number; retryAfterSeconds?: number; body?: string }> {
  try {
    return { status: 200, body: await breaker.execute(work) };
  } catch (error) {
    if (isCircuitOpenError(error)) {
      return Number.isFinite(error.retryAfter) ? { status: 503, retryAfterSeconds: Math.ceil(error.retryAfter / 1_000) } : { status: 503 };
    }
    throw error;
  }
}

// ── initialState, toJSON() and restore(): survive a restart or a cold start ────────────
/** A tiny key-value store (Redis, KV, a file) behind two functions. */
export interface SnapshotStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

const paymentsOptions = { failureRate: { threshold: 0.5, minimumCalls: 20 }, recoveryTimeout: 30_000 } as const;

/**
 * Builds the payments breaker from the last saved state, and saves it at every change. An
 * open breaker whose break ended while saved comes back ready for a trial. A snapshot from
 * other options (another window) is refused with a RangeError: start fresh then.
 */
export async function restoredPaymentsBreaker(store: SnapshotStore): Promise<CircuitBreaker> {
  const saved = await store.get('breaker:payments');
  let breaker: CircuitBreaker;
  try {
    const initialState = saved === undefined ? undefined : (JSON.parse(saved) as CircuitBreakerSnapshot);
    breaker = new CircuitBreaker({ ...paymentsOptions, initialState });
  } catch (error) {
    console.warn('bulwark: saved breaker state not usable, starting closed', error);
    breaker = new CircuitBreaker(paymentsOptions);
  }
  // The listener returns the store's promise: bulwark reports a rejected write (like a
  // listener that throws) instead of leaving an unhandled rejection that ends the process.
  breaker.on('stateChange', () => store.set('breaker:payments', JSON.stringify(breaker)));
  return breaker;
}

// ── CircuitBreakerGroup: one breaker per host, bounded ──────────────────────────────────
// Each host gets its own breaker, so one bad host does not cut the others off. At most 1 000
// are kept: beyond that the least recently used *closed* ones are forgotten (open ones never
// are), and an idle breaker costs no timer.
export const perHost = new CircuitBreakerGroup(
  { failureRate: { threshold: 0.5, minimumCalls: 10, window: { duration: 30_000 } }, recoveryTimeout: (opens) => Math.min(1_000 * 2 ** opens, 60_000) },
  { maxKeys: 1_000 },
);
perHost.on('stateChange', ({ key, from, to, reason }) => console.warn(`[${key}] ${from} → ${to} (${reason})`));

export function fetchThroughHost(url: string, init: { signal?: AbortSignal } = {}): Promise<Response> {
  return perHost.execute(new URL(url).host, ({ signal }) => fetch(url, { ...init, signal }));
}

// ── a short run ──────────────────────────────────────────────────────────────────────────
async function main(): Promise<void> {
  const clock = handClock();
  const breaker = new CircuitBreaker({
    failureRate: { threshold: 0.5, minimumCalls: 10, window: { calls: 20 } },
    recoveryTimeout: (opens) => 1_000 * opens,
    halfOpenSuccessThreshold: 2,
    clock,
  });
  breaker.on('stateChange', ({ from, to, reason }) => console.log(`${from} → ${to} (${reason})`));
  let failing = true;
  const call = (): Promise<string> => breaker.execute(() => (failing ? Promise.reject(new HttpError(503)) : 'ok')).catch((error: unknown) => String(error));
  for (let i = 0; i < 10; i++) await call();
  console.log(breaker.stats());
  clock.advance(1_000);
  await call(); // a failed trial: open for 2 s now
  clock.advance(2_000);
  failing = false;
  await call();
  await call(); // two good trials close it
  console.log(breaker.stats());
}

runMain(import.meta.url, main);
