import { describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  CircuitBreakerGroup,
  MemoryCache,
  MetricsRegistry,
  logPolicyEvents,
  retryWithBackoff,
  withCacheFallback,
  withFallback,
  withTimeout,
  type BulkheadOptions,
  type CacheFallbackOptions,
  type CircuitBreakerGroupOptions,
  type CircuitBreakerOptions,
  type FallbackOptions,
  type LogPolicyEventsOptions,
  type MemoryCacheOptions,
  type MetricsRegistryOptions,
  type TrackOptions,
  type Clock,
  type RetryOptions,
  type TimeoutOptions,
} from '../../src/index.js';
import { options as checkOptions } from '../../src/shared/options.js';

/** Lets a test pass what TypeScript would refuse, as a JavaScript caller could. */
const loose = <T>(value: unknown): T => value as T;

const breaker = (options: Record<string, unknown>) => () => new CircuitBreaker(loose<CircuitBreakerOptions>(options));
const retry = (options: Record<string, unknown>) => () => retryWithBackoff(loose<RetryOptions>(options));
const bulkhead = (options: Record<string, unknown>) => () => new Bulkhead(loose<BulkheadOptions>({ maxConcurrent: 1, ...options }));
const timeout = (ms: unknown, options?: unknown) => () => withTimeout(loose<number>(ms), loose<TimeoutOptions>(options));

const notAClock = { now: () => 0, setTimeout: () => 0 }; // no clearTimeout
const maxTimer = 2_147_483_647;

// [what, build, error class, substrings the message must contain (the option's name and the value)]
const bad: [string, () => unknown, typeof RangeError | typeof TypeError, string[]][] = [
  // CircuitBreaker
  ['failureThreshold negative', breaker({ failureThreshold: -1 }), RangeError, ['failureThreshold', '-1']],
  ['failureThreshold zero', breaker({ failureThreshold: 0 }), RangeError, ['failureThreshold', '0']],
  ['failureThreshold fractional', breaker({ failureThreshold: 2.5 }), RangeError, ['failureThreshold', '2.5']],
  ['failureThreshold NaN', breaker({ failureThreshold: NaN }), RangeError, ['failureThreshold', 'NaN']],
  ['failureThreshold a string', breaker({ failureThreshold: '5' }), TypeError, ['failureThreshold', '"5"']],
  ['recoveryTimeout negative', breaker({ recoveryTimeout: -100 }), RangeError, ['recoveryTimeout', '-100']],
  ['recoveryTimeout NaN', breaker({ recoveryTimeout: NaN }), RangeError, ['recoveryTimeout', 'NaN']],
  ['recoveryTimeout Infinity', breaker({ recoveryTimeout: Infinity }), RangeError, ['recoveryTimeout', 'Infinity']],
  ['recoveryTimeout past the timer limit', breaker({ recoveryTimeout: maxTimer + 1 }), RangeError, ['recoveryTimeout', String(maxTimer + 1)]],
  ['halfOpenMaxCalls zero', breaker({ halfOpenMaxCalls: 0 }), RangeError, ['halfOpenMaxCalls', '0']],
  ['halfOpenMaxCalls fractional', breaker({ halfOpenMaxCalls: 1.5 }), RangeError, ['halfOpenMaxCalls', '1.5']],
  ['halfOpenMaxCalls NaN', breaker({ halfOpenMaxCalls: NaN }), RangeError, ['halfOpenMaxCalls', 'NaN']],
  ['isFailure not a function', breaker({ isFailure: 'always' }), TypeError, ['isFailure', '"always"']],
  ['breaker clock without clearTimeout', breaker({ clock: notAClock }), TypeError, ['clock', 'object']],
  ['breaker clock a number', breaker({ clock: 5 }), TypeError, ['clock', '5']],
  ['breaker name a number', breaker({ name: 42 }), TypeError, ['name', '42']],
  ['breaker options a string', () => new CircuitBreaker(loose('fast')), TypeError, ['CircuitBreaker', '"fast"']],
  ['breaker options null', () => new CircuitBreaker(loose(null)), TypeError, ['CircuitBreaker', 'null']],
  ['breaker options a number', () => new CircuitBreaker(loose(3)), TypeError, ['CircuitBreaker', '3']],
  // retryWithBackoff
  ['maxRetries negative', retry({ maxRetries: -1 }), RangeError, ['maxRetries', '-1']],
  ['maxRetries fractional', retry({ maxRetries: 1.5 }), RangeError, ['maxRetries', '1.5']],
  ['maxRetries NaN', retry({ maxRetries: NaN }), RangeError, ['maxRetries', 'NaN']],
  ['maxRetries -Infinity', retry({ maxRetries: -Infinity }), RangeError, ['maxRetries', '-Infinity']],
  ['maxRetries a string', retry({ maxRetries: '3' }), TypeError, ['maxRetries', '"3"']],
  ['baseDelay negative', retry({ baseDelay: -1 }), RangeError, ['baseDelay', '-1']],
  ['baseDelay NaN', retry({ baseDelay: NaN }), RangeError, ['baseDelay', 'NaN']],
  ['baseDelay Infinity', retry({ baseDelay: Infinity }), RangeError, ['baseDelay', 'Infinity']],
  ['baseDelay past the timer limit', retry({ baseDelay: maxTimer + 1 }), RangeError, ['baseDelay', String(maxTimer + 1)]],
  ['maxDelay negative', retry({ maxDelay: -5 }), RangeError, ['maxDelay', '-5']],
  ['maxDelay NaN', retry({ maxDelay: NaN }), RangeError, ['maxDelay', 'NaN']],
  ['maxDelay Infinity', retry({ maxDelay: Infinity }), RangeError, ['maxDelay', 'Infinity']],
  ['maxDelay below baseDelay', retry({ baseDelay: 1_000, maxDelay: 500 }), RangeError, ['maxDelay', '500', 'baseDelay', '1000']],
  ['exponentialBase below 1', retry({ exponentialBase: 0.5 }), RangeError, ['exponentialBase', '0.5']],
  ['exponentialBase negative', retry({ exponentialBase: -2 }), RangeError, ['exponentialBase', '-2']],
  ['exponentialBase NaN', retry({ exponentialBase: NaN }), RangeError, ['exponentialBase', 'NaN']],
  ['exponentialBase Infinity', retry({ exponentialBase: Infinity }), RangeError, ['exponentialBase', 'Infinity']],
  ['jitter unknown', retry({ jitter: 'random' }), RangeError, ['jitter', '"random"']],
  ['jitter a boolean', retry({ jitter: true }), TypeError, ['jitter', 'true']],
  ['retryOn not a function', retry({ retryOn: true }), TypeError, ['retryOn', 'true']],
  ['random not a function', retry({ random: 0.5 }), TypeError, ['random', '0.5']],
  ['retry clock an empty object', retry({ clock: {} }), TypeError, ['clock', 'object']],
  ['retry options a string', () => retryWithBackoff(loose('3')), TypeError, ['retryWithBackoff', '"3"']],
  ['retry options an array', () => retryWithBackoff(loose([3])), TypeError, ['retryWithBackoff', 'array']],
  // Bulkhead
  ['Bulkhead without options', () => new Bulkhead(loose(undefined)), TypeError, ['maxConcurrent', 'undefined']],
  ['Bulkhead options null', () => new Bulkhead(loose(null)), TypeError, ['maxConcurrent', 'null']],
  ['maxConcurrent missing', () => new Bulkhead(loose({ maxQueue: 5 })), TypeError, ['maxConcurrent']],
  ['maxConcurrent zero', bulkhead({ maxConcurrent: 0 }), RangeError, ['maxConcurrent', '0']],
  ['maxConcurrent negative', bulkhead({ maxConcurrent: -3 }), RangeError, ['maxConcurrent', '-3']],
  ['maxConcurrent fractional', bulkhead({ maxConcurrent: 2.5 }), RangeError, ['maxConcurrent', '2.5']],
  ['maxConcurrent NaN', bulkhead({ maxConcurrent: NaN }), RangeError, ['maxConcurrent', 'NaN']],
  ['maxConcurrent a string', bulkhead({ maxConcurrent: '10' }), TypeError, ['maxConcurrent', '"10"']],
  ['maxQueue negative', bulkhead({ maxQueue: -1 }), RangeError, ['maxQueue', '-1']],
  ['maxQueue fractional', bulkhead({ maxQueue: 0.5 }), RangeError, ['maxQueue', '0.5']],
  ['maxQueue NaN', bulkhead({ maxQueue: NaN }), RangeError, ['maxQueue', 'NaN']],
  ['queueTimeout negative', bulkhead({ queueTimeout: -1 }), RangeError, ['queueTimeout', '-1']],
  ['queueTimeout NaN', bulkhead({ queueTimeout: NaN }), RangeError, ['queueTimeout', 'NaN']],
  ['queueTimeout past the timer limit', bulkhead({ queueTimeout: maxTimer + 1 }), RangeError, ['queueTimeout', String(maxTimer + 1)]],
  ['bulkhead clock null', bulkhead({ clock: null }), TypeError, ['clock', 'null']],
  // withTimeout
  ['timeout negative', timeout(-1), RangeError, ['ms', '-1']],
  ['timeout NaN', timeout(NaN), RangeError, ['ms', 'NaN']],
  ['timeout -Infinity', timeout(-Infinity), RangeError, ['ms', '-Infinity']],
  ['timeout past the timer limit', timeout(maxTimer + 1), RangeError, ['ms', String(maxTimer + 1)]],
  ['timeout a string', timeout('100'), TypeError, ['ms', '"100"']],
  ['timeout missing', timeout(undefined), TypeError, ['ms', 'undefined']],
  ['timeout clock without now', timeout(100, { clock: { setTimeout, clearTimeout } }), TypeError, ['clock', 'object']],
  ['timeout options a number', timeout(100, 7), TypeError, ['withTimeout', '7']],
  // withFallback
  ['fallback handles not a function', () => withFallback('x', loose({ handles: 'all' })), TypeError, ['handles', '"all"']],
  ['fallback options a string', () => withFallback('x', loose('all')), TypeError, ['withFallback', '"all"']],
  // MemoryCache and withCacheFallback
  ['cache maxEntries zero', () => new MemoryCache({ maxEntries: 0 }), RangeError, ['maxEntries', '0']],
  ['cache maxEntries fractional', () => new MemoryCache({ maxEntries: 1.5 }), RangeError, ['maxEntries', '1.5']],
  ['cache ttl negative', () => new MemoryCache({ ttl: -1 }), RangeError, ['ttl', '-1']],
  ['cache ttl NaN', () => new MemoryCache({ ttl: NaN }), RangeError, ['ttl', 'NaN']],
  ['cacheFallback fn not a function', () => withCacheFallback(loose(42), { cache: new MemoryCache(), key: () => 'k' }), TypeError, ['fn', '42']],
  ['cacheFallback key not a function', () => withCacheFallback(() => 1, loose({ cache: new MemoryCache(), key: 'k' })), TypeError, ['key', '"k"']],
  ['cacheFallback handles not a function', () => withCacheFallback(() => 1, loose({ cache: new MemoryCache(), key: () => 'k', handles: 1 })), TypeError, ['handles', '1']],
];

describe('bad options are refused when the policy is built', () => {
  it.each(bad)('%s', (_, build, errorClass, mentions) => {
    let thrown: unknown;
    try {
      build();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(errorClass);
    const message = (thrown as Error).message;
    for (const mention of mentions) expect(message).toContain(mention);
  });
});

describe('bad event subscriptions', () => {
  const policies: [string, { on(event: never, listener: never): unknown }][] = [
    ['CircuitBreaker', new CircuitBreaker()],
    ['retryWithBackoff', retryWithBackoff()],
    ['Bulkhead', new Bulkhead({ maxConcurrent: 1 })],
    ['withTimeout', withTimeout(10)],
    ['withFallback', withFallback(0)],
  ];

  it.each(policies)('%s refuses an unknown event name, naming it', (_, policy) => {
    expect(() => policy.on(loose('stateChanged'), loose(() => undefined))).toThrow(TypeError);
    expect(() => policy.on(loose('stateChanged'), loose(() => undefined))).toThrow(/stateChanged/);
  });

  it.each(policies)('%s refuses a listener that is not a function', (_, policy) => {
    const event = { CircuitBreaker: 'stateChange', retryWithBackoff: 'retry', Bulkhead: 'rejected', withTimeout: 'timeout', withFallback: 'fallback' }[_];
    expect(() => policy.on(loose(event), loose('log'))).toThrow(TypeError);
  });
});

const fakeClock: Clock = { now: () => 0, setTimeout: () => 1, clearTimeout: () => undefined };

describe('edge values that must be accepted', () => {
  it.each<[string, () => unknown, (built: never) => void]>([
    ['no options at all', () => new CircuitBreaker(), (b: CircuitBreaker) => expect([b.failureThreshold, b.recoveryTimeout, b.halfOpenMaxCalls]).toEqual([5, 30_000, 1])],
    ['options given as undefined', () => new CircuitBreaker({ failureThreshold: undefined, recoveryTimeout: undefined }), (b: CircuitBreaker) => expect(b.failureThreshold).toBe(5)],
    ['failureThreshold 1', () => new CircuitBreaker({ failureThreshold: 1 }), (b: CircuitBreaker) => expect(b.failureThreshold).toBe(1)],
    ['recoveryTimeout 0', () => new CircuitBreaker({ recoveryTimeout: 0 }), (b: CircuitBreaker) => expect(b.recoveryTimeout).toBe(0)],
    ['recoveryTimeout at the timer limit', () => new CircuitBreaker({ recoveryTimeout: maxTimer }), (b: CircuitBreaker) => expect(b.recoveryTimeout).toBe(maxTimer)],
    ['halfOpenMaxCalls 100', () => new CircuitBreaker({ halfOpenMaxCalls: 100 }), (b: CircuitBreaker) => expect(b.halfOpenMaxCalls).toBe(100)],
    ['a custom clock and a name', () => new CircuitBreaker({ clock: fakeClock, name: 'payments' }), (b: CircuitBreaker) => expect(b.name).toBe('payments')],
    ['maxRetries 0', () => retryWithBackoff({ maxRetries: 0 }), (r: ReturnType<typeof retryWithBackoff>) => expect(r.maxRetries).toBe(0)],
    ['maxRetries Infinity', () => retryWithBackoff({ maxRetries: Infinity }), (r: ReturnType<typeof retryWithBackoff>) => expect(r.maxRetries).toBe(Infinity)],
    ['baseDelay 0', () => retryWithBackoff({ baseDelay: 0, jitter: 'none' }), (r: ReturnType<typeof retryWithBackoff>) => expect(r.delay(1)).toBe(0)],
    ['baseDelay and maxDelay both 0', () => retryWithBackoff({ baseDelay: 0, maxDelay: 0 }), (r: ReturnType<typeof retryWithBackoff>) => expect(r.delay(10)).toBe(0)],
    ['maxDelay equal to baseDelay', () => retryWithBackoff({ baseDelay: 300, maxDelay: 300, jitter: 'none' }), (r: ReturnType<typeof retryWithBackoff>) => expect(r.delay(4)).toBe(300)],
    ['maxDelay alone below the default baseDelay', () => retryWithBackoff({ maxDelay: 500, jitter: 'none' }), (r: ReturnType<typeof retryWithBackoff>) => expect([r.delay(1), r.delay(5)]).toEqual([500, 500])],
    ['baseDelay alone above the default maxDelay raises the cap to it', () => retryWithBackoff({ baseDelay: 60_000, jitter: 'none' }), (r: ReturnType<typeof retryWithBackoff>) => expect([r.maxDelay, r.delay(1), r.delay(3)]).toEqual([60_000, 60_000, 60_000])],
    ['failureThreshold Infinity: only a rate opens the circuit', () => new CircuitBreaker({ failureThreshold: Infinity }), (b: CircuitBreaker) => expect(b.failureThreshold).toBe(Infinity)],
    ['exponentialBase 1 (constant delays)', () => retryWithBackoff({ baseDelay: 200, exponentialBase: 1, jitter: 'none' }), (r: ReturnType<typeof retryWithBackoff>) => expect([r.delay(1), r.delay(7)]).toEqual([200, 200])],
    ['exponentialBase 1.5', () => retryWithBackoff({ baseDelay: 100, exponentialBase: 1.5, jitter: 'none' }), (r: ReturnType<typeof retryWithBackoff>) => expect(r.delay(3)).toBe(225)],
    ...(['proportional', 'full', 'equal', 'decorrelated', 'none'] as const).map(
      (jitter): [string, () => unknown, (built: never) => void] => [`jitter '${jitter}'`, () => retryWithBackoff({ jitter }), (r: ReturnType<typeof retryWithBackoff>) => expect(r.jitter).toBe(jitter)],
    ),
    ['maxConcurrent 1', () => new Bulkhead({ maxConcurrent: 1 }), (b: Bulkhead) => expect([b.maxConcurrent, b.maxQueue, b.queueTimeout]).toEqual([1, 0, Infinity])],
    ['maxConcurrent Infinity', () => new Bulkhead({ maxConcurrent: Infinity }), (b: Bulkhead) => expect(b.maxConcurrent).toBe(Infinity)],
    ['maxQueue Infinity', () => new Bulkhead({ maxConcurrent: 2, maxQueue: Infinity }), (b: Bulkhead) => expect(b.maxQueue).toBe(Infinity)],
    ['queueTimeout 0', () => new Bulkhead({ maxConcurrent: 2, queueTimeout: 0 }), (b: Bulkhead) => expect(b.queueTimeout).toBe(0)],
    ['queueTimeout Infinity', () => new Bulkhead({ maxConcurrent: 2, queueTimeout: Infinity }), (b: Bulkhead) => expect(b.queueTimeout).toBe(Infinity)],
    ['withTimeout(0)', () => withTimeout(0), (t: ReturnType<typeof withTimeout>) => expect(t.timeout).toBe(0)],
    ['withTimeout(Infinity)', () => withTimeout(Infinity), (t: ReturnType<typeof withTimeout>) => expect(t.timeout).toBe(Infinity)],
    ['withTimeout at the timer limit', () => withTimeout(maxTimer), (t: ReturnType<typeof withTimeout>) => expect(t.timeout).toBe(maxTimer)],
    ['withTimeout with a fractional ms', () => withTimeout(0.5), (t: ReturnType<typeof withTimeout>) => expect(t.timeout).toBe(0.5)],
    ['withFallback of undefined', () => withFallback(undefined), () => undefined],
    ['withFallback with handles', () => withFallback(0, { handles: () => true, name: 'zero' }), () => undefined],
    ['MemoryCache ttl Infinity', () => new MemoryCache({ ttl: Infinity, maxEntries: 1 }), (c: MemoryCache<unknown>) => expect([c.ttl, c.maxEntries]).toEqual([Infinity, 1])],
  ])('%s', (_, build, check) => {
    let built: unknown;
    expect(() => {
      built = build();
    }).not.toThrow();
    check(built as never);
  });

  it('withTimeout(Infinity) runs the call with no deadline and no timer', async () => {
    let armed = 0;
    const clock: Clock = { now: () => 0, setTimeout: () => ++armed, clearTimeout: () => undefined };
    await expect(withTimeout(Infinity, { clock }).execute(() => 'done')).resolves.toBe('done');
    expect(armed).toBe(0);
  });
});

describe('bad arguments to execute and wrap', () => {
  const stack = new CircuitBreaker();

  it('execute with something that is not a function rejects with a TypeError', async () => {
    await expect(stack.execute(loose('fetch'))).rejects.toThrow(TypeError);
    await expect(stack.execute(loose(null))).rejects.toThrow(/fn must be a function, got null/);
  });

  it('execute with a signal that is not an AbortSignal rejects with a TypeError naming it', async () => {
    await expect(stack.execute(() => 1, { signal: loose({ aborted: false }) })).rejects.toThrow(/signal must be an AbortSignal/);
  });

  it.each<[string, unknown, RegExp]>([
    ['a number', 5, /options must be an object, got number/],
    ['null', null, /options must be an object, got null/],
    ['a string', 'fast', /options must be an object, got string/],
  ])('execute with options that are %s rejects with a TypeError naming them', async (_, options, message) => {
    const fn = vi.fn(() => 1);
    await expect(stack.execute(fn, loose(options))).rejects.toThrow(message);
    expect(fn).not.toHaveBeenCalled();
  });

  it('wrap of something that is not a function throws a TypeError at once', () => {
    expect(() => stack.wrap(loose<() => number>(42))).toThrow(TypeError);
    expect(() => stack.wrap(loose<() => number>(42))).toThrow(/fn must be a function, got number/);
  });
});

describe('unknown options are refused, with the nearest known one', () => {
  const group = (groupOptions: Record<string, unknown>) => () => new CircuitBreakerGroup({}, loose<CircuitBreakerGroupOptions>(groupOptions));
  const fallbackWith = (options: Record<string, unknown>) => () => withFallback(0, loose<FallbackOptions>(options));
  const cacheFallback = (options: Record<string, unknown>) => () =>
    withCacheFallback(async () => 1, loose<CacheFallbackOptions<[], number>>({ cache: new MemoryCache(), key: () => 'k', ...options }));

  // [what, build, the message's hint: a near key or a peer's name, the known options it lists]
  it.each<[string, () => unknown, string, string]>([
    ['a misspelt breaker option', breaker({ failureTreshold: 3 }), 'has no option "failureTreshold" (did you mean "failureThreshold"?)', '"failureThreshold", "failureRate", "slowCall"'],
    ["opossum's resetTimeout", breaker({ resetTimeout: 10 }), `has no option "resetTimeout" (another library's name: bulwark's is "recoveryTimeout")`, '"recoveryTimeout"'],
    ["opossum's errorThresholdPercentage", breaker({ errorThresholdPercentage: 50 }), "bulwark's is failureRate.threshold, a share from 0 to 1", '"failureRate"'],
    ['a misspelt failureRate key', breaker({ failureRate: { treshold: 0.5 } }), 'CircuitBreaker failureRate has no option "treshold" (did you mean "threshold"?)', '"threshold", "minimumCalls", "window"'],
    ['a misspelt window key', breaker({ failureRate: { threshold: 0.5, window: { call: 10 } } }), 'failureRate.window has no option "call" (did you mean "calls"?)', '"calls", "duration", "buckets"'],
    ['a misspelt slowCall key', breaker({ slowCall: { duration: 10, rate: 0.5 } }), 'CircuitBreaker slowCall has no option "rate"', '"duration", "rateThreshold"'],
    ["p-retry's retries", retry({ retries: 10 }), `retryWithBackoff has no option "retries" (another library's name: bulwark's is "maxRetries")`, '"maxRetries", "baseDelay"'],
    ["p-retry's minTimeout", retry({ minTimeout: 10 }), `bulwark's is "baseDelay"`, '"baseDelay"'],
    ['a misspelt retry option', retry({ maxDelai: 10 }), '(did you mean "maxDelay"?)', '"maxDelay"'],
    ['a misspelt bulkhead option', bulkhead({ maxQeue: 5 }), 'Bulkhead has no option "maxQeue" (did you mean "maxQueue"?)', '"maxConcurrent", "maxQueue", "queueTimeout", "clock", "name"'],
    ["p-limit's concurrency", () => new Bulkhead(loose<BulkheadOptions>({ concurrency: 2 })), `Bulkhead has no option "concurrency" (another library's name: bulwark's is "maxConcurrent")`, '"maxConcurrent"'],
    ['a misspelt fallback option', fallbackWith({ handle: () => true }), 'withFallback has no option "handle" (did you mean "handles"?)', '"handles", "handlesResult", "name"'],
    ['a misspelt timeout option', timeout(10, { nam: 'x' }), 'withTimeout has no option "nam" (did you mean "name"?)', '"name", "clock"'],
    ['a misspelt MemoryCache option', () => new MemoryCache(loose<MemoryCacheOptions>({ maxEntry: 5 })), 'MemoryCache has no option "maxEntry" (did you mean "maxEntries"?)', '"maxEntries", "ttl", "clock"'],
    ['a misspelt withCacheFallback option', cacheFallback({ handle: () => true }), 'withCacheFallback has no option "handle" (did you mean "handles"?)', '"cache", "key", "default", "handles"'],
    ['a misspelt group option', group({ maxKey: 5 }), 'CircuitBreakerGroup has no option "maxKey" (did you mean "maxKeys"?)', '"maxKeys"'],
    ['a misspelt registry option', () => new MetricsRegistry(loose<MetricsRegistryOptions>({ bucket: [1] })), 'MetricsRegistry has no option "bucket" (did you mean "buckets"?)', '"buckets", "now"'],
    ['a misspelt track option', () => new MetricsRegistry().track(new Bulkhead({ maxConcurrent: 1 }), loose<TrackOptions>({ nmae: 'x' })), 'track has no option "nmae"', '"name"'],
    ['a misspelt logPolicyEvents option', () => logPolicyEvents(new Bulkhead({ maxConcurrent: 1, name: 'b' }), console, loose<LogPolicyEventsOptions>({ level: {} })), 'logPolicyEvents has no option "level" (did you mean "levels"?)', '"style", "name", "levels", "summaryInterval", "clock"'],
    ['a key far from every known one', bulkhead({ colour: 'red' }), 'Bulkhead has no option "colour"; known options:', '"maxConcurrent"'],
  ])('%s is a TypeError naming the key, the hint and the known options', (_, build, hint, known) => {
    expect(build).toThrow(TypeError);
    expect(build).toThrow(hint);
    expect(build).toThrow(known);
  });

  it('refuses an unknown key even when its value is undefined: the caller still meant something by it', () => {
    expect(breaker({ failureTreshold: undefined })).toThrow('has no option "failureTreshold"');
  });

  it('keeps the options that are known, at their values', () => {
    const retrying = retryWithBackoff({ maxRetries: 7, baseDelay: 3 });
    expect([retrying.maxRetries, retrying.baseDelay]).toEqual([7, 3]);
  });

  it('execute(fn, signal), the shape cockatiel uses, rejects with a TypeError saying to pass { signal }', async () => {
    const fn = vi.fn(() => 1);
    const signal = new AbortController().signal;
    await expect(new Bulkhead({ maxConcurrent: 1 }).execute(fn, loose(signal))).rejects.toThrow(new TypeError('execute(fn, options): got an AbortSignal; pass it as execute(fn, { signal })'));
    expect(fn).not.toHaveBeenCalled();
  });

  it('execute with an unknown option rejects without running fn', async () => {
    const fn = vi.fn(() => 1);
    await expect(withTimeout(10).execute(fn, loose({ timeout: 5 }))).rejects.toThrow(new TypeError('execute(fn, options) has no option "timeout"; known options: "signal"'));
    expect(fn).not.toHaveBeenCalled();
  });
});

describe('each rule in full: the error class and the whole message', () => {
  const CLOCK_RULE = 'must be a Clock with now(), setTimeout() and clearTimeout(), got';

  it.each<[string, () => unknown, Error]>([
    ['a duration that may be Infinity', timeout(-1), new RangeError('withTimeout(ms): ms must be a duration in ms from 0 to 2147483647 or Infinity, got -1')],
    ['a duration that may not', retry({ baseDelay: Infinity }), new RangeError('retryWithBackoff baseDelay must be a duration in ms from 0 to 2147483647, got Infinity')],
    ['a span', () => new MemoryCache({ ttl: -1 }), new RangeError('MemoryCache ttl must be a duration in ms ≥ 0 or Infinity, got -1')],
    [
      'one of a list',
      retry({ jitter: 'random' }),
      new RangeError('retryWithBackoff jitter must be one of "proportional", "full", "equal", "decorrelated", "none", got "random"'),
    ],
    ['a clock without now()', timeout(10, { clock: { setTimeout, clearTimeout } }), new TypeError(`withTimeout clock ${CLOCK_RULE} an object`)],
    ['a clock without setTimeout()', timeout(10, { clock: { now: Date.now, clearTimeout } }), new TypeError(`withTimeout clock ${CLOCK_RULE} an object`)],
    ['a clock without clearTimeout()', timeout(10, { clock: { now: Date.now, setTimeout } }), new TypeError(`withTimeout clock ${CLOCK_RULE} an object`)],
    [
      'a function carrying the three methods (a clock is an object)',
      timeout(10, { clock: Object.assign(() => 0, { now: Date.now, setTimeout, clearTimeout }) }),
      new TypeError(`withTimeout clock ${CLOCK_RULE} a function`),
    ],
  ])('%s', (_, build, error) => {
    expect(build).toThrow(error);
    expect(build).toThrow(error.constructor as typeof Error);
  });

  it('accepts a span of 0: a MemoryCache whose entries expire at once', () => {
    let now = 0;
    const cache = new MemoryCache<number>({ ttl: 0, clock: { now: () => now, setTimeout: () => 0, clearTimeout: () => {} } });
    expect(cache.ttl).toBe(0);
    cache.set('k', 1);
    now = 1;
    expect(cache.get('k')).toBeUndefined();
  });
});

describe('the nearest known option, when two are as near', () => {
  it('suggests the one listed first', () => {
    const message = (known: string[]) => {
      try {
        checkOptions('Window', { mDelay: 1 }, known as never);
      } catch (error) {
        return error instanceof TypeError ? error.message : 'not a TypeError';
      }
      return 'no error';
    };
    expect(message(['minDelay', 'maxDelay'])).toBe('Window has no option "mDelay" (did you mean "minDelay"?); known options: "minDelay", "maxDelay"');
    expect(message(['maxDelay', 'minDelay'])).toBe('Window has no option "mDelay" (did you mean "maxDelay"?); known options: "maxDelay", "minDelay"');
  });
});
