/**
 * Running one check function under its timeout, and reading one circuit breaker, into a
 * `CheckResult`.
 */
import type { Clock } from '../shared/clock.js';
import { isThenable, watchReturned } from '../shared/report.js';
import * as validate from './options.js';
import type { CheckResult, CheckStatus, CircuitBreakerLike, HealthCheck } from './types.js';

export type CheckEntry = {
  readonly kind: 'check';
  readonly name: string;
  readonly check: HealthCheck;
  readonly critical: boolean;
  readonly timeout: number;
};
export type BreakerEntry = {
  readonly kind: 'breaker';
  readonly name: string;
  readonly breaker: CircuitBreakerLike;
  readonly critical: boolean;
};
export type Entry = CheckEntry | BreakerEntry;

/** An error's text for a report: its message, else its name, else what `String` makes of it. */
export function describe(error: unknown): string {
  try {
    if (typeof error === 'object' && error !== null) {
      const { message, name } = error as { message?: unknown; name?: unknown };
      if (typeof message === 'string' && message !== '') return message;
      if (typeof name === 'string' && name !== '') return name;
    }
    return String(error);
  } catch {
    return 'an error that cannot be printed';
  }
}

/** Runs one check function; the promise always fulfils, by the check's timeout at the latest. */
export function runCheck(clock: Clock, entry: CheckEntry): Promise<CheckResult> {
  const started = clock.now();
  const controller = new AbortController();
  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    let timer: unknown;
    const finish = (status: CheckStatus, error: unknown, timedOut: boolean): void => {
      // Stryker disable next-line ConditionalExpression: without the guard a second finish() only clears a timer that already fired and resolves a settled promise, both no-ops.
      if (settled) return; // the timeout answered first: a late outcome changes nothing
      // Stryker disable next-line BooleanLiteral: as above, a second finish() changes nothing.
      settled = true;
      clock.clearTimeout(timer);
      const checkedAt = clock.now();
      const base = { status, durationMs: Math.max(0, checkedAt - started), critical: entry.critical, checkedAt };
      if (status !== 'fail') {
        resolve(base);
      } else if (timedOut) {
        resolve({ ...base, error: `timed out after ${entry.timeout} ms`, cause: error, timedOut: true });
      } else {
        resolve({ ...base, error: describe(error), cause: error });
      }
    };
    // Armed before the check is called, so a check that settles at the deadline exactly has
    // lost: a timeout means "not settled when the time was up".
    timer = clock.setTimeout(() => {
      const reason = new DOMException(`Health check ${JSON.stringify(entry.name)} timed out after ${entry.timeout} ms`, 'TimeoutError');
      finish('fail', reason, true);
      controller.abort(reason);
    }, entry.timeout);
    let value: unknown;
    try {
      value = entry.check({ signal: controller.signal });
    } catch (error) {
      finish('fail', error, false);
      return;
    }
    const settleWith = (resolved: unknown): void => {
      if (resolved === false) {
        finish('fail', new Error('the check returned false'), false);
        return;
      }
      // Stryker disable next-line BooleanLiteral: finish() reads timedOut for a failure only.
      finish('pass', undefined, false);
    };
    let thenable: boolean;
    try {
      thenable = (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
    } catch (error) {
      finish('fail', error, false); // a `then` getter that throws: what a promise would reject with
      return;
    }
    // A synchronous answer settles now: behind a microtask its duration would include
    // whatever other work got queued first.
    if (!thenable) {
      settleWith(value);
      return;
    }
    // Both outcomes are handled, so a check that rejects after its timeout leaves no
    // unhandled rejection behind.
    Promise.resolve(value).then(settleWith, (error: unknown) => finish('fail', error, false));
  });
}

export function readBreaker(clock: Clock, entry: BreakerEntry): CheckResult {
  const checkedAt = clock.now();
  const base = { durationMs: 0, critical: entry.critical, checkedAt };
  let state: unknown;
  try {
    state = entry.breaker.state;
  } catch (error) {
    return { ...base, status: 'fail', error: `reading the circuit state failed: ${describe(error)}`, cause: error };
  }
  const details: Record<string, unknown> = { state };
  if (typeof entry.breaker.stats === 'function') {
    try {
      const stats = entry.breaker.stats();
      // A promise is no counter to show; watched, so a rejection is reported, not unhandled.
      if (isThenable(stats)) watchReturned(`the stats() of circuit breaker ${JSON.stringify(entry.name)}`, stats);
      else details['stats'] = stats;
    } catch {
      // Counters are a nicety: a breaker whose stats() throws still reports its state.
    }
  }
  switch (state) {
    case 'closed':
      return { ...base, status: 'pass', details };
    case 'half-open':
      return { ...base, status: 'warn', error: 'circuit half-open', details };
    case 'open':
    case 'isolated':
      return { ...base, status: 'fail', error: `circuit ${state}`, details };
    default:
      return { ...base, status: 'fail', error: `unknown circuit state ${validate.show(state)}`, details };
  }
}
