/**
 * A chaos drill: a dependency's stack under injected faults and latency spikes, to prove that
 * its timeouts and retries absorb them before a caller sees anything. The dependency itself is
 * healthy; `bulwark/chaos` makes 30 % of the attempts fail and 10 % of them hang for a second,
 * far past the per-attempt timeout.
 *
 * The drill runs in virtual time: every policy takes the same `clock`, so 1 000 calls spanning
 * seconds of their time run in a moment, and with seeded random sources a run replays exactly.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/chaos.ts [seed]
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { compose, retryWithBackoff, withTimeout, type Clock, type Policy } from 'bulwark';
import { chaosFault, chaosLatency, seededRandom } from 'bulwark/chaos';
import { runMain } from './is-main.js';

// ── Chaos per request ───────────────────────────────────────────────────────────────────
// `enabled` is asked for every call: here it reads the request the call runs for, so chaos
// reaches only the requests that asked for it (a test client's header, a canary's share of
// traffic). bulwark runs each call in its caller's async context, so the store is right on
// every attempt of a retry too.

/** Whether the request being served asked for chaos. */
export const chaosRequested = new AsyncLocalStorage<boolean>();

/** Serves `handle` with chaos on when the request carries `x-chaos: on`. */
export function serveWithChaosHeader<T>(headers: Readonly<Record<string, string | undefined>>, handle: () => T): T {
  return chaosRequested.run(headers['x-chaos'] === 'on', handle);
}

// ── The stack under test ────────────────────────────────────────────────────────────────

/** The deadline a caller is promised, whatever happens below. */
export const TOTAL_TIMEOUT = 2_000;
/** Each attempt's own deadline: an attempt that hangs is given up and retried. */
export const ATTEMPT_TIMEOUT = 300;
/** How long an injected latency spike lasts: far past the per-attempt timeout. */
export const SPIKE = 1_000;

/**
 * The stack of a search dependency, with chaos innermost, where the dependency's own failures
 * arise: 30 % faults and 10 % latency spikes. The total timeout bounds the caller's wait; the
 * retry tries again until it runs out; each attempt has its own timeout, which ends a spike.
 */
export function searchStack({ clock, seed }: { clock: Clock; seed: number }): {
  stack: Policy<never>;
  counts: { faults: number; spikes: number; retries: number };
} {
  const retry = retryWithBackoff({ maxRetries: Infinity, baseDelay: 20, maxDelay: 200, jitter: 'full', clock, random: seededRandom(seed + 1) });
  const enabled = (): boolean => chaosRequested.getStore() === true;
  const spikes = chaosLatency({ rate: 0.1, latency: SPIKE, enabled, clock, random: seededRandom(seed + 2), name: 'search' });
  const faults = chaosFault({ rate: 0.3, fault: () => new Error('injected: search unavailable'), enabled, random: seededRandom(seed + 3), name: 'search' });
  const counts = { faults: 0, spikes: 0, retries: 0 };
  faults.on('injected', () => counts.faults++);
  spikes.on('injected', () => counts.spikes++);
  retry.on('retry', () => counts.retries++);
  const stack = compose(withTimeout(TOTAL_TIMEOUT, { clock }), retry, withTimeout(ATTEMPT_TIMEOUT, { clock }), spikes, faults);
  return { stack, counts };
}

// ── Virtual time ────────────────────────────────────────────────────────────────────────

/** A clock whose time moves only when `run` fires its next timer: hours of timeouts run in a moment. */
export class VirtualClock implements Clock {
  #now = 0;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers armed and not yet fired nor cleared. */
  get armed(): number {
    return this.#timers.size;
  }

  /** Fires timers in order, letting the promises they settle run after each, until none is left. */
  async run(): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.#timers) if (due === undefined || entry[1].at < due[1].at) due = entry;
      if (due === undefined) return;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].callback();
    }
  }
}

// ── The drill ───────────────────────────────────────────────────────────────────────────

/** What the callers saw, and what was injected. */
export interface DrillReport {
  readonly seed: number;
  readonly calls: number;
  readonly errors: number;
  readonly faults: number;
  readonly spikes: number;
  readonly retries: number;
  /** Callers' latency percentiles, in whole ms of virtual time. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Timers left once every call settled: none, or something outlived its call. */
  readonly timersLeft: number;
}

/**
 * Sends `calls` requests with chaos on, one every 5 ms, to a healthy search dependency that
 * answers in 20–80 ms, and reports what the callers saw.
 */
export async function chaosDrill({ calls = 1_000, seed = 1 }: { calls?: number; seed?: number } = {}): Promise<DrillReport> {
  const clock = new VirtualClock();
  const { stack, counts } = searchStack({ clock, seed });
  const dependency = seededRandom(seed);
  const search = (query: string, signal: AbortSignal): Promise<string[]> =>
    new Promise((resolve, reject) => {
      const timer = clock.setTimeout(() => resolve([`result for ${query}`]), 20 + Math.floor(dependency() * 60));
      signal.addEventListener('abort', () => (clock.clearTimeout(timer), reject(signal.reason)), { once: true });
    });

  const latencies: number[] = [];
  let errors = 0;
  const done: Promise<void>[] = [];
  for (let i = 0; i < calls; i++) {
    clock.setTimeout(() => {
      const started = clock.now();
      const call = serveWithChaosHeader({ 'x-chaos': 'on' }, () => stack.execute(({ signal }) => search(`query ${i}`, signal)));
      done.push(
        call.then(
          () => void latencies.push(clock.now() - started),
          () => {
            errors++;
            latencies.push(clock.now() - started);
          },
        ),
      );
    }, i * 5);
  }
  await clock.run();
  await Promise.all(done);

  latencies.sort((a, b) => a - b);
  const percentile = (p: number): number => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
  return { seed, calls, errors, ...counts, p50: Math.round(percentile(50)), p99: Math.round(percentile(99)), max: Math.round(latencies.at(-1) ?? 0), timersLeft: clock.armed };
}

async function main(): Promise<void> {
  const seed = Number(process.argv[2] ?? 1);
  const report = await chaosDrill({ seed });
  console.log(`chaos drill, seed ${report.seed}: ${report.calls} calls; 30 % faults and 10 % latency spikes of ${SPIKE} ms injected`);
  console.log(`injected: ${report.faults} faults, ${report.spikes} latency spikes; the retry made ${report.retries} retries`);
  console.log(`callers: ${report.errors} errors; latency p50 ${report.p50} ms, p99 ${report.p99} ms, max ${report.max} ms (total timeout ${TOTAL_TIMEOUT} ms, per attempt ${ATTEMPT_TIMEOUT} ms)`);
  console.log(`timers left: ${report.timersLeft}`);
}

runMain(import.meta.url, main);
