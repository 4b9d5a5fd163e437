/**
 * The options of RedisCircuitBreaker, with a scripted client (no server): every bad value and
 * every other library's name refused with its class and whole message, and what each accepted
 * option tells the shared script (the ARGV every replica sends, so replicas of one fleet count
 * alike), defaults included.
 */
import { describe, expect, it } from 'vitest';
import { RedisCircuitBreaker, type RedisCircuitBreakerOptions } from '../../src/redis/index.js';
import { sharedSettings } from '../../src/redis/breaker-options.js';

const fake = { evalsha: async () => [], eval: async () => [] };
const KNOWN =
  'known options: "name", "failureThreshold", "failureRate", "slowCall", "recoveryTimeout", "halfOpenMaxCalls", "halfOpenSuccessThreshold", "halfOpenMaxWait", "isFailure", "isFailureResult", "subscriber", "syncInterval", "timeout", "probeInterval"';
const SUBSCRIBER = 'RedisCircuitBreaker subscriber must be a Redis connection for pub/sub (client.duplicate() of an ioredis, iovalkey or node-redis client), got';

/** The error the constructor throws, as its class and whole message. */
function refusal(options: unknown): [string, string] | 'accepted' {
  try {
    new RedisCircuitBreaker(fake as never, options as RedisCircuitBreakerOptions);
    return 'accepted';
  } catch (error) {
    return [(error as Error).constructor.name, (error as Error).message];
  }
}

describe('RedisCircuitBreaker options: every bad value refused with its class and whole message', () => {
  it.each<[string, unknown, string, string]>([
    ['no options', undefined, 'TypeError', 'RedisCircuitBreaker(client, options): options with a name are required, got undefined'],
    ['null options', null, 'TypeError', 'RedisCircuitBreaker(client, options): options with a name are required, got null'],
    ['a string for options', 'payments', 'TypeError', 'RedisCircuitBreaker(client, options): options with a name are required, got "payments"'],
    ['an array for options', [], 'TypeError', 'RedisCircuitBreaker options must be an object, got an array'],
    ['no name', {}, 'TypeError', 'RedisCircuitBreaker name is required: every replica sharing the breaker uses the same name'],
    ['a name of null', { name: null }, 'TypeError', 'RedisCircuitBreaker name must be a string, got null'],
    ['a name that is a number', { name: 5 }, 'TypeError', 'RedisCircuitBreaker name must be a string, got 5'],
    ['an empty name', { name: '' }, 'RangeError', 'RedisCircuitBreaker name must be a non-empty string, got ""'],
    ['failureThreshold 0', { name: 'x', failureThreshold: 0 }, 'RangeError', 'RedisCircuitBreaker failureThreshold must be a whole number ≥ 1 or Infinity, got 0'],
    ['a recoveryTimeout below 0', { name: 'x', recoveryTimeout: -1 }, 'RangeError', 'RedisCircuitBreaker recoveryTimeout must be a duration in ms from 0 to 2147483647, got -1'],
    ['a halfOpenMaxWait below 0', { name: 'x', halfOpenMaxWait: -1 }, 'RangeError', 'RedisCircuitBreaker halfOpenMaxWait must be a duration in ms from 0 to 2147483647 or Infinity, got -1'],
    ['a failure rate over 1', { name: 'x', failureRate: { threshold: 2 } }, 'RangeError', 'RedisCircuitBreaker failureRate.threshold must be a number in (0, 1], got 2'],
    ['a slow-call duration below 0', { name: 'x', slowCall: { duration: -1, rateThreshold: 0.5 } }, 'RangeError', 'RedisCircuitBreaker slowCall.duration must be a duration in ms from 0 to 2147483647, got -1'],
    ['an isFailure that is not a function', { name: 'x', isFailure: 3 }, 'TypeError', 'RedisCircuitBreaker isFailure must be a function, got 3'],
    ['an isFailureResult that is not a function', { name: 'x', isFailureResult: 'a' }, 'TypeError', 'RedisCircuitBreaker isFailureResult must be a function, got "a"'],
    ['syncInterval 0', { name: 'x', syncInterval: 0 }, 'RangeError', 'RedisCircuitBreaker syncInterval must be a finite duration in ms > 0, got 0'],
    ['a syncInterval that is a string', { name: 'x', syncInterval: '5' }, 'TypeError', 'RedisCircuitBreaker syncInterval must be a number, got "5"'],
    ['a syncInterval beyond a timer', { name: 'x', syncInterval: 2 ** 31 }, 'RangeError', 'RedisCircuitBreaker syncInterval must be a duration in ms from 0 to 2147483647, got 2147483648'],
    ['a syncInterval of Infinity', { name: 'x', syncInterval: Infinity }, 'RangeError', 'RedisCircuitBreaker syncInterval must be a duration in ms from 0 to 2147483647, got Infinity'],
    ['timeout 0', { name: 'x', timeout: 0 }, 'RangeError', 'RedisCircuitBreaker timeout must be a finite duration in ms > 0, got 0'],
    ['a timeout beyond a timer', { name: 'x', timeout: 2 ** 31 }, 'RangeError', 'RedisCircuitBreaker timeout must be a duration in ms from 0 to 2147483647, got 2147483648'],
    ['a timeout that is a string', { name: 'x', timeout: '1' }, 'TypeError', 'RedisCircuitBreaker timeout must be a number, got "1"'],
    ['probeInterval 0', { name: 'x', probeInterval: 0 }, 'RangeError', 'RedisCircuitBreaker probeInterval must be a finite duration in ms > 0, got 0'],
    ['a probeInterval beyond a timer', { name: 'x', probeInterval: 2 ** 31 }, 'RangeError', 'RedisCircuitBreaker probeInterval must be a duration in ms from 0 to 2147483647, got 2147483648'],
    ['a probeInterval of null', { name: 'x', probeInterval: null }, 'TypeError', 'RedisCircuitBreaker probeInterval must be a number, got null'],
    ['a subscriber that is a number', { name: 'x', subscriber: 42 }, 'TypeError', `${SUBSCRIBER} 42`],
    ['a subscriber of null', { name: 'x', subscriber: null }, 'TypeError', `${SUBSCRIBER} null`],
    ['a subscriber without subscribe', { name: 'x', subscriber: { unsubscribe() {}, on() {} } }, 'TypeError', `${SUBSCRIBER} an object`],
    ['a subscriber without unsubscribe', { name: 'x', subscriber: { subscribe() {}, on() {} } }, 'TypeError', `${SUBSCRIBER} an object`],
    ['a function with the methods of a subscriber', { name: 'x', subscriber: Object.assign(() => {}, { subscribe() {}, unsubscribe() {}, on() {} }) }, 'TypeError', `${SUBSCRIBER} a function`],
    ['a subscriber without on', { name: 'x', subscriber: { subscribe() {}, unsubscribe() {} } }, 'TypeError', `${SUBSCRIBER} an object`],
    ['a misspelt option', { name: 'x', syncInteval: 5 }, 'TypeError', `RedisCircuitBreaker has no option "syncInteval" (did you mean "syncInterval"?); ${KNOWN}`],
    ['an unknown option', { name: 'x', zzz: 1 }, 'TypeError', `RedisCircuitBreaker has no option "zzz"; ${KNOWN}`],
  ])('refuses %s', (_, options, type, message) => {
    expect(refusal(options)).toEqual([type, message]);
  });

  it.each<[string, string]>([
    ['initialState', 'none: the state lives in Redis, and a new replica learns it with its first call'],
    ['clock', "none: time is the Redis server's"],
    ['resetTimeout', '"recoveryTimeout"'],
    ['errorThresholdPercentage', 'failureRate.threshold, a share from 0 to 1'],
    ['volumeThreshold', 'failureRate.minimumCalls'],
    ['rollingCountTimeout', 'failureRate.window: { duration }'],
    ['pollInterval', '"syncInterval"'],
    ['flushInterval', '"syncInterval"'],
    ['storeTimeout', '"timeout"'],
  ])("refuses another library's name %s, naming bulwark's", (key, ours) => {
    expect(refusal({ name: 'x', [key]: 1 })).toEqual(['TypeError', `RedisCircuitBreaker has no option "${key}" (another library's name: bulwark's is ${ours}); ${KNOWN}`]);
  });

  it('accepts every known option at once, a subscriber of either family, and the extremes', () => {
    const subscriber = { subscribe: async () => {}, unsubscribe: async () => {}, on: () => {} };
    const all: RedisCircuitBreakerOptions = {
      name: 'all',
      failureThreshold: Infinity,
      failureRate: { threshold: 1, minimumCalls: 1, window: { duration: 1, buckets: 1 } },
      slowCall: { duration: 0, rateThreshold: 1 },
      recoveryTimeout: () => 0,
      halfOpenMaxCalls: 1,
      halfOpenSuccessThreshold: 1,
      halfOpenMaxWait: Infinity,
      isFailure: () => true,
      isFailureResult: () => false,
      subscriber,
      syncInterval: 2 ** 31 - 1,
      timeout: 0.5,
      probeInterval: 1,
    };
    expect(refusal(all)).toBe('accepted');
    expect(new RedisCircuitBreaker(fake as never, all).name).toBe('all');
  });
});

describe('what the options tell the shared script (ARGV 2–12) and the replica', () => {
  const counted = (error: unknown) => error === 'counted';
  const settingsOf = (options: Omit<RedisCircuitBreakerOptions, 'name'>) => sharedSettings({ name: 'n', ...options }, counted);

  it('defaults: 5 consecutive failures, no window, 30 s breaks, one trial that closes it, a default half-open wait; sync and timeout 100 ms, probe 1 s', () => {
    const s = settingsOf({});
    expect(s.scriptArgs).toEqual(['5', '100', '-1', '-1', 'none', '0', '1', 'break', '-1', '1', '1']);
    expect(s).toMatchObject({
      name: 'n',
      subscriber: undefined,
      syncInterval: 100,
      timeout: 100,
      probeInterval: 1_000,
      failureThreshold: 5,
      recoveryTimeout: 30_000,
      halfOpenMaxCalls: 1,
      halfOpenSuccessThreshold: 1,
      isFailure: undefined,
      isFailureResult: undefined,
      windowKind: 'none',
      windowSize: 0,
      buckets: 1,
      minimumCalls: 100,
      failureRateThreshold: Infinity,
      slowCallRateThreshold: Infinity,
      slowCallDuration: undefined,
    });
  });

  it('failureThreshold Infinity is sent as -1 (never opens on consecutive failures); a finite one as itself', () => {
    expect(settingsOf({ failureThreshold: Infinity }).scriptArgs[0]).toBe('-1');
    expect(settingsOf({ failureThreshold: 7 }).scriptArgs[0]).toBe('7');
  });

  it('a count window: its size, minimumCalls no more than the window (or as given), the rate threshold; no slow-call rate', () => {
    const s = settingsOf({ failureRate: { threshold: 0.5, window: { calls: 20 } } });
    // With a failure rate, consecutive failures alone no longer open it (as in the core breaker).
    expect(s.scriptArgs).toEqual(['-1', '20', '0.5', '-1', 'calls', '20', '1', 'break', '-1', '1', '1']);
    expect(s).toMatchObject({ windowKind: 'calls', windowSize: 20, minimumCalls: 20, failureRateThreshold: 0.5, slowCallRateThreshold: Infinity });
    expect(settingsOf({ failureRate: { threshold: 0.5, window: { calls: 500 } } }).scriptArgs.slice(1, 7)).toEqual(['100', '0.5', '-1', 'calls', '500', '1']);
    expect(settingsOf({ failureRate: { threshold: 0.25, minimumCalls: 3, window: { calls: 500 } } }).minimumCalls).toBe(3);
  });

  it('a failure rate without a window counts over the last 100 calls', () => {
    const s = settingsOf({ failureRate: { threshold: 0.5 } });
    expect(s.scriptArgs.slice(1, 7)).toEqual(['100', '0.5', '-1', 'calls', '100', '1']);
  });

  it('a time window: its duration, its buckets as given or up to 10 (one per ms below 10 ms), minimumCalls 100 unless given', () => {
    expect(settingsOf({ failureRate: { threshold: 1, window: { duration: 60_000 } } }).scriptArgs.slice(1, 7)).toEqual(['100', '1', '-1', 'time', '60000', '10']);
    expect(settingsOf({ failureRate: { threshold: 1, window: { duration: 5.5 } } }).scriptArgs.slice(1, 7)).toEqual(['100', '1', '-1', 'time', '5.5', '5']);
    expect(settingsOf({ failureRate: { threshold: 1, minimumCalls: 2, window: { duration: 1_000, buckets: 4 } } }).scriptArgs.slice(1, 7)).toEqual(['2', '1', '-1', 'time', '1000', '4']);
  });

  it('slow calls alone: their rate over the last 100 calls, a failure rate that never opens it, calls timed', () => {
    const s = settingsOf({ slowCall: { duration: 250, rateThreshold: 0.8 } });
    expect(s.scriptArgs.slice(1, 7)).toEqual(['100', '-1', '0.8', 'calls', '100', '1']);
    expect(s).toMatchObject({ failureRateThreshold: Infinity, slowCallRateThreshold: 0.8, slowCallDuration: 250 });
  });

  it('halfOpenMaxWait: as given, -2 for Infinity (a trial may take forever); trials and the successes that close it as given', () => {
    expect(settingsOf({ halfOpenMaxWait: 1_500 }).scriptArgs[8]).toBe('1500');
    expect(settingsOf({ halfOpenMaxWait: Infinity }).scriptArgs[8]).toBe('-2');
    expect(settingsOf({ halfOpenMaxCalls: 4, halfOpenSuccessThreshold: 3 }).scriptArgs.slice(9)).toEqual(['4', '3']);
  });

  it('the local stand-in counts only what this breaker classified as a failure (the user\'s classifiers are not given to it)', async () => {
    const isFailure = () => false;
    const s = settingsOf({ isFailure, isFailureResult: () => true, failureThreshold: 1 });
    expect(s.isFailure).toBe(isFailure);
    expect(await s.local.execute(() => 'value')).toBe('value');
    expect(s.local.state).toBe('closed');
    await expect(s.local.execute(() => Promise.reject(new Error('not counted')))).rejects.toThrow('not counted');
    expect(s.local.state).toBe('closed');
    await expect(s.local.execute(() => Promise.reject('counted'))).rejects.toBe('counted');
    expect(s.local.state).toBe('open');
  });
});
