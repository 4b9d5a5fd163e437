import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import * as bulwark from '../src/index.js';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  CircuitOpenError,
  ResilienceError,
  TimeoutError,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isResilienceError,
  isRefusal,
  isTimeoutError,
  LayerPolicy,
  compose,
  refusal,
  retryWithBackoff,
  withTimeout,
  type Clock,
  type PolicyDescription,
} from '../src/index.js';
import { deferred } from './fixtures/promises.js';

type Bulwark = typeof bulwark;
type Guard = (error: unknown) => boolean;

const guards = { isResilienceError, isCircuitOpenError, isBulkheadRejectedError, isTimeoutError } satisfies Record<string, Guard>;
type GuardName = keyof typeof guards;

interface ErrorCase {
  readonly label: string;
  readonly make: (lib: Bulwark) => Error;
  readonly name: string;
  readonly fields: Record<string, unknown>;
  readonly message: RegExp;
  readonly guard: GuardName;
}

const cases: ErrorCase[] = [
  {
    label: 'CircuitOpenError while open',
    make: (lib) => new lib.CircuitOpenError(1_500, 'open'),
    name: 'CircuitOpenError',
    fields: { retryAfter: 1_500, state: 'open' },
    message: /open.*1500 ms/,
    guard: 'isCircuitOpenError',
  },
  {
    label: 'CircuitOpenError with a fractional wait',
    make: (lib) => new lib.CircuitOpenError(0.4),
    name: 'CircuitOpenError',
    fields: { retryAfter: 0.4, state: 'open' },
    message: /1 ms/, // rounded up: the caller must not come back early
    guard: 'isCircuitOpenError',
  },
  {
    label: 'CircuitOpenError while half-open',
    make: (lib) => new lib.CircuitOpenError(0, 'half-open'),
    name: 'CircuitOpenError',
    fields: { retryAfter: 0, state: 'half-open' },
    message: /half-open/,
    guard: 'isCircuitOpenError',
  },
  {
    label: 'CircuitOpenError while isolated',
    make: (lib) => new lib.CircuitOpenError(Infinity, 'isolated'),
    name: 'CircuitOpenError',
    fields: { retryAfter: Infinity, state: 'isolated' },
    message: /isolated/,
    guard: 'isCircuitOpenError',
  },
  {
    label: 'BulkheadRejectedError when full',
    make: (lib) => new lib.BulkheadRejectedError('full', 3, 7),
    name: 'BulkheadRejectedError',
    fields: { reason: 'full', maxConcurrent: 3, maxQueue: 7 },
    message: /full.*3 running.*7 queued/,
    guard: 'isBulkheadRejectedError',
  },
  {
    label: 'BulkheadRejectedError on queue timeout',
    make: (lib) => new lib.BulkheadRejectedError('queue-timeout', 2, 4),
    name: 'BulkheadRejectedError',
    fields: { reason: 'queue-timeout', maxConcurrent: 2, maxQueue: 4 },
    message: /queue timeout/i,
    guard: 'isBulkheadRejectedError',
  },
  {
    label: 'TimeoutError',
    make: (lib) => new lib.TimeoutError(250),
    name: 'TimeoutError',
    fields: { timeout: 250 },
    message: /timed out after 250 ms/,
    guard: 'isTimeoutError',
  },
  {
    label: 'ResilienceError',
    make: (lib) => new lib.ResilienceError('something resilient failed'),
    name: 'ResilienceError',
    fields: {},
    message: /^something resilient failed$/,
    guard: 'isResilienceError',
  },
];

describe.each(cases)('$label', ({ make, name, fields, message, guard }) => {
  const error = make(bulwark);

  it('has a stable name, its fields and a message', () => {
    expect(error.name).toBe(name);
    expect(error).toMatchObject(fields);
    expect(error.message).toMatch(message);
    expect(String(error)).toMatch(new RegExp(`^${name}: `));
    expect(error.stack).toContain(name);
  });

  it('is a ResilienceError and an Error', () => {
    expect(error).toBeInstanceOf(ResilienceError);
    expect(error).toBeInstanceOf(Error);
  });

  it('passes its own guard and isResilienceError, and no other guard', () => {
    for (const [guardName, check] of Object.entries(guards)) {
      expect(check(error), guardName).toBe(guardName === guard || guardName === 'isResilienceError');
    }
  });
});

describe('the errors policies raise', () => {
  it('carry what the caller needs: retryAfter, reason and limits, timeout', async () => {
    let now = 1_700_000_000_000;
    const clock: Clock = { now: () => now, setTimeout: (callback, ms) => setTimeout(callback, ms), clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>) };
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 5_000, clock });
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    now += 1_200;
    const open = await breaker.execute(() => 'x').catch((error: unknown) => error);
    expect(isCircuitOpenError(open) && { retryAfter: open.retryAfter, state: open.state }).toEqual({ retryAfter: 3_800, state: 'open' });

    breaker.isolate();
    const isolated = await breaker.execute(() => 'x').catch((error: unknown) => error);
    expect(isCircuitOpenError(isolated) && { retryAfter: isolated.retryAfter, state: isolated.state }).toEqual({ retryAfter: Infinity, state: 'isolated' });

    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 0 });
    let release!: () => void;
    const holding = bulkhead.execute(() => new Promise<void>((resolve) => (release = resolve)));
    const full = await bulkhead.execute(() => 'x').catch((error: unknown) => error);
    expect(full).toBeInstanceOf(BulkheadRejectedError);
    expect(full).toMatchObject({ reason: 'full', maxConcurrent: 1, maxQueue: 0 });
    release();
    await holding;

    vi.useFakeTimers();
    try {
      const timedOut = withTimeout(75)
        .execute(() => new Promise(() => {}))
        .catch((error: unknown) => error);
      await vi.advanceTimersByTimeAsync(75);
      const error = await timedOut;
      expect(error).toBeInstanceOf(TimeoutError);
      expect(error).toMatchObject({ name: 'TimeoutError', timeout: 75 });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('guards', () => {
  it.each<[string, unknown]>([
    ['a plain Error', new Error('x')],
    ['an Error named TimeoutError', Object.assign(new Error('x'), { name: 'TimeoutError' })],
    ['an Error named CircuitOpenError', Object.assign(new Error('x'), { name: 'CircuitOpenError' })],
    ['a look-alike object', { name: 'BulkheadRejectedError', reason: 'full', maxConcurrent: 1, maxQueue: 0 }],
    ['a DOMException named TimeoutError', new DOMException('signal timed out', 'TimeoutError')],
    ['null', null],
    ['undefined', undefined],
    ['a string', 'TimeoutError'],
  ])('reject %s', (_, value) => {
    for (const [guardName, check] of Object.entries(guards)) expect(check(value), guardName).toBe(false);
  });

  it('do not take the reason of AbortSignal.timeout() for a bulwark TimeoutError', async () => {
    const signal = AbortSignal.timeout(1);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    const reason: unknown = signal.reason;
    expect(reason).toBeInstanceOf(DOMException);
    expect((reason as DOMException).name).toBe('TimeoutError');
    expect(isTimeoutError(reason)).toBe(false);
    expect(isResilienceError(reason)).toBe(false);
  });
});

function checkAcrossCopies(other: Bulwark): void {
  // The copies really are distinct: instanceof cannot see across them, which is why the guards exist.
  expect(other.TimeoutError).not.toBe(TimeoutError);
  expect(new other.TimeoutError(1)).not.toBeInstanceOf(TimeoutError);

  for (const { label, make, guard } of cases) {
    const theirs = make(other);
    const ours = make(bulwark);
    for (const guardName of Object.keys(guards) as GuardName[]) {
      const expected = guardName === guard || guardName === 'isResilienceError';
      expect(guards[guardName](theirs), `our ${guardName} on their ${label}`).toBe(expected);
      expect(other[guardName](ours), `their ${guardName} on our ${label}`).toBe(expected);
    }
  }
  expect(other.isTimeoutError(new DOMException('x', 'TimeoutError'))).toBe(false);
}

describe('guards across two loaded copies of bulwark', () => {
  it('recognise the errors of a second ESM copy of the source', async () => {
    vi.resetModules();
    const other = (await import('../src/index.js')) as Bulwark;
    checkAcrossCopies(other);
  });

  it('recognise the errors of the built CommonJS copy', () => {
    const cjs = fileURLToPath(new URL('../dist/index.cjs', import.meta.url));
    if (!existsSync(cjs)) throw new Error(`${cjs} is missing: build the package first (npx tsup; npm test builds before vitest)`);
    const other = createRequire(import.meta.url)(cjs) as Bulwark;
    checkAcrossCopies(other);
  });
});

describe('refusals', () => {
  /** A policy that turns every call away with `thrown`, as a user's policy may. */
  class Refuses extends LayerPolicy<void> {
    constructor(private readonly thrown: unknown) {
      super();
    }
    protected override enter(): void {
      throw this.thrown;
    }
    protected describe(): PolicyDescription {
      return { kind: 'refuses', name: undefined, refuses: true };
    }
  }

  it('brands a refusal for another copy of bulwark too (Symbol.for), and recognises its refusals', () => {
    const cjs = fileURLToPath(new URL('../dist/index.cjs', import.meta.url));
    if (!existsSync(cjs)) throw new Error(`${cjs} is missing: build the package first (npx tsup; npm test builds before vitest)`);
    const other = createRequire(import.meta.url)(cjs) as Bulwark;
    expect(other.isRefusal(refusal(new Error('ours')))).toBe(true);
    expect(isRefusal(other.refusal(new Error('theirs')))).toBe(true);
    expect(isRefusal(new Error('plain'))).toBe(false);
  });

  it('brands the same error again without throwing: a policy may refuse with one stored error every time', () => {
    const full = new Error('full');
    expect(refusal(refusal(full))).toBe(full);
    expect(isRefusal(full)).toBe(true);
    const frozen = Object.freeze(new Error('frozen'));
    expect(refusal(refusal(frozen))).toBe(frozen);
    expect(isRefusal(frozen)).toBe(true);
  });

  it.each<[string, unknown]>([
    ['a string', 'busy'],
    ['null', null],
    ['undefined', undefined],
    ['a number', 429],
  ])('passes %s thrown by a policy\'s enter on to the caller as it is', async (_label, thrown) => {
    const outcome = await new Refuses(thrown).execute(() => 'ran').then(
      () => ({ ran: true }),
      (error: unknown) => ({ error }),
    );
    expect(outcome).toEqual({ error: thrown });
  });

  it('brands an error object thrown by a policy\'s enter as a refusal: a retry around it does not repeat it', async () => {
    const error = new Error('no');
    const attempts = vi.fn(() => 'ran');
    await expect(compose(retryWithBackoff({ baseDelay: 0 }), new Refuses(error)).execute(attempts)).rejects.toBe(error);
    expect(isRefusal(error)).toBe(true);
    expect(attempts).not.toHaveBeenCalled();
  });
});

describe('refusals carry no stack trace', () => {
  it('gives a full bulkhead’s rejection a stack of its name and message only, and restores Error.stackTraceLimit', async () => {
    const limit = Error.stackTraceLimit;
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const holder = deferred();
    const blocker = bulkhead.execute(() => holder.promise);
    const error = await bulkhead.execute(() => 'never').catch((caught: unknown) => caught);
    expect(isBulkheadRejectedError(error)).toBe(true);
    expect((error as Error).stack).toBe(`BulkheadRejectedError: ${(error as Error).message}`);
    expect(Error.stackTraceLimit).toBe(limit);
    holder.resolve();
    await blocker;
  });

  it('leaves the stack of an error a user builds alone', () => {
    expect(new BulkheadRejectedError('full', 1, 0).stack).toMatch(/\n\s+at /);
    expect(new CircuitOpenError(10).stack).toMatch(/\n\s+at /);
  });
});
