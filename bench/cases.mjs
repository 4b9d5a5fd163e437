// Every timed case, bulwark's and its peers', built with the same work on both sides: the
// function under protection is `async () => 1` for the success path, and for the retry case
// a function that rejects twice and then resolves 1. `setup()` checks once that each case
// does what its name says (a success returns 1, an open breaker rejects with its own error,
// the retry case makes exactly three attempts), so a broken build cannot time something else.
import {
  Bulkhead,
  CircuitBreaker,
  compose,
  isCircuitOpenError,
  retryWithBackoff,
  withFallback,
  withTimeout,
} from '../dist/index.js';
import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  ConstantBackoff,
  ExponentialBackoff,
  TimeoutStrategy,
  bulkhead as cockatielBulkhead,
  circuitBreaker as cockatielBreaker,
  fallback as cockatielFallback,
  handleAll,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
  wrap,
} from 'cockatiel';
import OpossumBreaker from 'opossum';
import pLimit from 'p-limit';
import pRetry from 'p-retry';
import pTimeout from 'p-timeout';

const work = async () => 1;

/** Thrown by the retry case's failing attempts. One object, so no attempt pays for a stack capture. */
const blip = new Error('blip');

/** A function that rejects on its first two calls, resolves 1 on the third, and so on in threes. */
function failsTwice() {
  let attempts = 0;
  const fn = async () => {
    attempts++;
    if (attempts % 3 !== 0) throw blip;
    return 1;
  };
  fn.attempts = () => attempts;
  return fn;
}

const passValue = (value) => value;
const passError = (error) => {
  throw error;
};
const settleWithWork = (resolve, reject) => {
  work().then(resolve, reject);
};
const settled = Promise.resolve();
const nothing = () => {};

const HOUR = 3_600_000;
const bulwarkStack = () =>
  compose(withFallback(0), new CircuitBreaker(), retryWithBackoff(), withTimeout(1_000), new Bulkhead({ maxConcurrent: 10 }));
// Cockatiel's counterparts of bulwark's defaults: a breaker that opens after 5 consecutive
// failures and half-opens after 30 s, 3 retries with exponential backoff, a 1 s timeout, a
// bulkhead of 10 with no queue (bulwark's `maxQueue` defaults to 0).
const cockatielStack = (strategy) =>
  wrap(
    cockatielFallback(handleAll, 0),
    cockatielBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) }),
    cockatielRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }),
    cockatielTimeout(1_000, strategy),
    cockatielBulkhead(10, 0),
  );

const opossumBreakers = [];
function opossum(fn, options) {
  const breaker = new OpossumBreaker(fn, options);
  opossumBreakers.push(breaker);
  return breaker;
}

/**
 * Builds every case. Returns `{ cases, dispose }`: `cases` maps an id to
 * `{ run, rejects, describe }`; `dispose()` stops what the peers keep running (opossum's
 * rolling-statistics intervals, unref'd but alive until `shutdown()`).
 */
export async function setup() {
  const cases = new Map();
  const add = (id, describe, run, rejects = false) => cases.set(id, { run, rejects, describe });

  // Success path.
  add('await', 'work', work);
  {
    const breaker = new CircuitBreaker();
    add('bulwark.breaker', 'new CircuitBreaker()', () => breaker.execute(work));
    const retry = retryWithBackoff();
    add('bulwark.retry', 'retryWithBackoff()', () => retry.execute(work));
    const timeout = withTimeout(1_000);
    add('bulwark.timeout', 'withTimeout(1_000)', () => timeout.execute(work));
    const bulkhead = new Bulkhead({ maxConcurrent: 10 });
    add('bulwark.bulkhead', 'new Bulkhead({ maxConcurrent: 10 })', () => bulkhead.execute(work));
    const fallback = withFallback(0);
    add('bulwark.fallback', 'withFallback(0)', () => fallback.execute(work));
    const stack = bulwarkStack();
    add('bulwark.stack', 'compose(withFallback, CircuitBreaker, retryWithBackoff, withTimeout(1_000), Bulkhead)', () => stack.execute(work));
  }
  {
    const breaker = cockatielBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) });
    add('cockatiel.breaker', 'circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) })', () => breaker.execute(work));
    const retry = cockatielRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() });
    add('cockatiel.retry', 'retry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() })', () => retry.execute(work));
    const timeout = cockatielTimeout(1_000, TimeoutStrategy.Aggressive);
    add('cockatiel.timeout', 'timeout(1_000, TimeoutStrategy.Aggressive)', () => timeout.execute(work));
    const bulkhead = cockatielBulkhead(10, 0);
    add('cockatiel.bulkhead', 'bulkhead(10, 0)', () => bulkhead.execute(work));
    const fallback = cockatielFallback(handleAll, 0);
    add('cockatiel.fallback', 'fallback(handleAll, 0)', () => fallback.execute(work));
    const stack = cockatielStack(TimeoutStrategy.Aggressive);
    add('cockatiel.stack', 'wrap(fallback, circuitBreaker, retry, timeout(Aggressive), bulkhead)', () => stack.execute(work));
    const cooperative = cockatielStack(TimeoutStrategy.Cooperative);
    add('cockatiel.stackCooperative', 'wrap(fallback, circuitBreaker, retry, timeout(Cooperative), bulkhead)', () => cooperative.execute(work));
  }
  {
    const breaker = opossum(work, { timeout: false });
    add('opossum.breaker', 'new CircuitBreaker(work, { timeout: false }).fire()', () => breaker.fire());
    const timed = opossum(work, { timeout: 1_000 });
    add('opossum.breakerTimeout', 'new CircuitBreaker(work, { timeout: 1_000 }).fire()', () => timed.fire());
  }
  {
    add('p.retry', 'pRetry(work, { retries: 3 })', () => pRetry(work, { retries: 3 }));
    add('p.timeout', 'pTimeout(work(), { milliseconds: 1_000 })', () => pTimeout(work(), { milliseconds: 1_000 }));
    const limit = pLimit(10);
    add('p.limit', 'pLimit(10)(work)', () => limit(work));
    const stackLimit = pLimit(10);
    add('p.stack', 'pLimit(10)(() => pRetry(() => pTimeout(work(), { milliseconds: 1_000 }), { retries: 3 }))', () =>
      stackLimit(() => pRetry(() => pTimeout(work(), { milliseconds: 1_000 }), { retries: 3 })),
    );
  }

  // Floors: the least any code with the same duty can cost here, with no bookkeeping at all.
  // They bound the targets: a policy that must see the function's outcome pays at least one
  // reaction to its promise; a timeout that answers at its deadline, even when the function
  // ignores its signal, pays for a promise of its own that it can settle early; arming a timer
  // only for calls still pending after their first reaction adds one microtask.
  add('floor.reaction', 'work().then(passValue, passError)', () => work().then(passValue, passError));
  add('floor.ownPromise', 'new Promise((resolve, reject) => work().then(resolve, reject))', () => new Promise(settleWithWork));
  add('floor.ownPromiseCheck', 'the same, and one microtask queued: settled.then(nothing)', () => {
    const answer = new Promise(settleWithWork);
    void settled.then(nothing);
    return answer;
  });

  // Failure paths: the price of one error, and of an open breaker's refusal.
  add('error.new', 'new Error()', () => new Error('boom'));
  add('error.asyncThrow', 'async () => { throw new Error() }', async () => {
    throw new Error('boom');
  }, true);
  {
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: HOUR });
    await breaker.execute(() => Promise.reject(blip)).catch(() => {});
    check(breaker.state === 'open', `bulwark breaker should be open, is ${breaker.state}`);
    add('bulwark.open', 'new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: HOUR }), opened by one failure', () => breaker.execute(work), true);
    const error = await breaker.execute(work).catch((e) => e);
    check(isCircuitOpenError(error), `bulwark open breaker should reject with CircuitOpenError, got ${error}`);
  }
  {
    const breaker = cockatielBreaker(handleAll, { halfOpenAfter: HOUR, breaker: new ConsecutiveBreaker(1) });
    await breaker.execute(() => Promise.reject(blip)).catch(() => {});
    add('cockatiel.open', 'circuitBreaker(handleAll, { halfOpenAfter: HOUR, breaker: new ConsecutiveBreaker(1) }), opened by one failure', () => breaker.execute(work), true);
    const error = await breaker.execute(work).catch((e) => e);
    check(error instanceof BrokenCircuitError, `cockatiel open breaker should reject with BrokenCircuitError, got ${error}`);
  }
  {
    const breaker = opossum(work, { timeout: 1_000, resetTimeout: HOUR });
    breaker.open();
    add('opossum.open', 'new CircuitBreaker(work, { timeout: 1_000, resetTimeout: HOUR }), after open()', () => breaker.fire(), true);
    const error = await breaker.fire().catch((e) => e);
    check(error?.code === 'EOPENBREAKER', `opossum open breaker should reject with EOPENBREAKER, got ${error}`);
  }

  // Failure paths: two failed attempts, success on the third, no delay between them.
  {
    const flaky = failsTwice();
    const retry = retryWithBackoff({ baseDelay: 0 });
    add('bulwark.retry3', 'retryWithBackoff({ baseDelay: 0 })', () => retry.execute(flaky));
    await checkThreeAttempts(flaky, () => retry.execute(flaky));
  }
  {
    const flaky = failsTwice();
    const retry = cockatielRetry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(0) });
    add('cockatiel.retry3', 'retry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(0) })', () => retry.execute(flaky));
    await checkThreeAttempts(flaky, () => retry.execute(flaky));
  }
  {
    const flaky = failsTwice();
    add('p.retry3', 'pRetry(flaky, { retries: 3, minTimeout: 0 })', () => pRetry(flaky, { retries: 3, minTimeout: 0 }));
    await checkThreeAttempts(flaky, () => pRetry(flaky, { retries: 3, minTimeout: 0 }));
  }

  for (const [id, { run, rejects }] of cases) {
    if (rejects || id === 'error.new') continue;
    const result = await run();
    check(result === 1, `${id} should resolve 1, got ${result}`);
  }

  const dispose = () => {
    for (const breaker of opossumBreakers) breaker.shutdown();
  };
  return { cases, dispose };
}

/** Bulkhead against p-limit: 100 concurrent, unbounded queue, every task submitted at once. */
export function throughputCases() {
  const bulkhead = new Bulkhead({ maxConcurrent: 100, maxQueue: Infinity });
  const limit = pLimit(100);
  return new Map([
    ['bulwark.bulkhead', { describe: 'new Bulkhead({ maxConcurrent: 100, maxQueue: Infinity })', submit: () => bulkhead.execute(work) }],
    ['p.limit', { describe: 'pLimit(100)', submit: () => limit(work) }],
  ]);
}

async function checkThreeAttempts(flaky, run) {
  const before = flaky.attempts();
  const result = await run();
  check(result === 1 && flaky.attempts() - before === 3, `a fails-twice call should resolve 1 after 3 attempts, got ${result} after ${flaky.attempts() - before}`);
}

function check(condition, message) {
  if (!condition) throw new Error(`benchmark setup: ${message}`);
}
