import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compose, retryWithBackoff, type ExecutionContext } from '../../src/index.js';
import { chaosFault, chaosLatency, chaosOutcome, seededRandom } from '../../src/chaos/index.js';
import { flush } from '../fixtures/promises.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const injected = new Error('injected');
const noClock = { now: () => 0, setTimeout: () => undefined, clearTimeout: () => undefined };

/** One builder per strategy, from the shared options; each injects at rate 1 and answers 'injected' (a fault: rejects with `injected`). */
const strategies = {
  chaosFault: (options: object) => chaosFault({ fault: injected, ...options } as Parameters<typeof chaosFault>[0]),
  chaosLatency: (options: object) => chaosLatency({ latency: 0, ...options } as Parameters<typeof chaosLatency>[0]),
  chaosOutcome: (options: object) => chaosOutcome({ outcome: 'injected', ...options } as Parameters<typeof chaosOutcome>[0]),
} as const;
const names = Object.keys(strategies) as (keyof typeof strategies)[];
const knownOptions = {
  chaosFault: '"rate", "enabled", "random", "name", "fault"',
  chaosLatency: '"rate", "enabled", "random", "name", "latency", "clock"',
  chaosOutcome: '"rate", "enabled", "random", "name", "outcome"',
};

/** Counts the injections of a policy built by `strategies`. */
function injections(policy: { on(event: 'injected', listener: () => void): () => void }): () => number {
  let count = 0;
  policy.on('injected', () => count++);
  return () => count;
}

/** Runs one call and says whether it was injected into. */
async function injectedInto(policy: ReturnType<(typeof strategies)[keyof typeof strategies]>, run: () => Promise<unknown> = () => policy.execute(() => 'ran')): Promise<boolean> {
  const count = injections(policy);
  await run().catch(() => undefined);
  return count() === 1;
}

describe('chaos options: what every strategy checks when it is built', () => {
  describe.each(names)('%s', (name) => {
    const build = strategies[name];

    it.each([
      [{ rate: -0.1 }, new RangeError(`${name} rate must be a number from 0 to 1, got -0.1`)],
      [{ rate: 1.5 }, new RangeError(`${name} rate must be a number from 0 to 1, got 1.5`)],
      [{ rate: Number.NaN }, new RangeError(`${name} rate must be a number from 0 to 1, got NaN`)],
      [{ rate: Infinity }, new RangeError(`${name} rate must be a number from 0 to 1, got Infinity`)],
      [{ rate: '0.5' }, new TypeError(`${name} rate must be a number from 0 to 1, got "0.5"`)],
      [{}, new TypeError(`${name}(options): rate is required (a number from 0 to 1)`)],
      [{ rate: 1, enabled: 'yes' }, new TypeError(`${name} enabled must be true, false or a function of the call, got "yes"`)],
      [{ rate: 1, enabled: 1 }, new TypeError(`${name} enabled must be true, false or a function of the call, got 1`)],
      [{ rate: 1, random: 0.5 }, new TypeError(`${name} random must be a function, got 0.5`)],
      [{ rate: 1, name: 42 }, new TypeError(`${name} name must be a string, got 42`)],
    ])('refuses %o', (options, error) => {
      expect(() => build(options)).toThrow(error);
    });

    it.each([
      ['injectionRate', 'rate'],
      ['enabledGenerator', 'enabled'],
      ['randomizer', 'random'],
      ['onFaultInjected', "on('injected', listener)"],
    ])("refuses Polly's %s, naming bulwark's", (key, ours) => {
      expect(() => build({ rate: 1, [key]: true })).toThrow(TypeError);
      expect(() => build({ rate: 1, [key]: true })).toThrow(`${name} has no option "${key}" (another library's name: bulwark's is ${ours.startsWith('on(') ? ours : `"${ours}"`}`);
    });

    it.each([
      ['injectionRateGenerator', '"rate" (a number), with "enabled" as a function for a decision per call'],
      ['onLatencyInjected', "on('injected', listener)"],
      ['onOutcomeInjected', "on('injected', listener)"],
    ])("refuses Polly's %s with the whole of bulwark's answer", (key, ours) => {
      expect(() => build({ rate: 1, [key]: true })).toThrow(new TypeError(`${name} has no option "${key}" (another library's name: bulwark's is ${ours}); known options: ${knownOptions[name]}`));
    });

    it('enabled: false steps aside exactly as rate 0 does: a call settles in as many microtasks', async () => {
      const ticksToSettle = async (call: Promise<unknown>): Promise<number> => {
        let settled = false;
        call.then(() => (settled = true), () => (settled = true));
        let ticks = 0;
        while (!settled) {
          await Promise.resolve();
          ticks++;
        }
        return ticks;
      };
      const off = await ticksToSettle(build({ rate: 1, enabled: false }).execute(() => 'ran'));
      expect(off).toBe(await ticksToSettle(build({ rate: 0 }).execute(() => 'ran')));
    });

    it('refuses a misspelt key, naming the one meant', () => {
      expect(() => build({ rate: 1, rat: 1 })).toThrow(`${name} has no option "rat" (did you mean "rate"?)`);
    });

    it.each([null, 42, 'rate'])('refuses options that are not an object: %o', (options) => {
      const factory = { chaosFault, chaosLatency, chaosOutcome }[name] as (options: unknown) => unknown;
      const needed = { chaosFault: 'fault', chaosLatency: 'latency', chaosOutcome: 'outcome' }[name];
      expect(() => factory(options)).toThrow(new TypeError(`${name}(options): options with rate and ${needed} are required, got ${typeof options === 'string' ? JSON.stringify(options) : String(options)}`));
      expect(() => factory([])).toThrow(new TypeError(`${name} options must be an object, got an array`));
    });

    it.each([0, Number.MIN_VALUE, 1e-9, 0.5, 1 - Number.EPSILON, 1])('accepts rate %d', (rate) => {
      expect(build({ rate }).rate).toBe(rate);
    });

    it('enabled false never injects and asks random nothing; true and a function inject', async () => {
      const random = vi.fn(() => 0);
      const off = build({ rate: 1, enabled: false, random });
      await expect(off.execute(() => 'ran')).resolves.toBe('ran');
      expect(await injectedInto(off)).toBe(false);
      expect(await injectedInto(build({ rate: 0.5, enabled: true, random }))).toBe(true);
      expect(random).toHaveBeenCalledTimes(1);
    });

    it('an enabled function is asked for every call, with its context, before random is drawn', async () => {
      const random = vi.fn(() => 0);
      const answers = [true, false, true];
      const contexts: ExecutionContext[] = [];
      const enabled = vi.fn((ctx: ExecutionContext) => (contexts.push(ctx), answers.shift() as boolean));
      const policy = build({ rate: 0.5, enabled, random });
      const outcomes = [];
      for (let i = 0; i < 3; i++) outcomes.push(await injectedInto(policy));
      expect(outcomes).toEqual([true, false, true]);
      expect(enabled).toHaveBeenCalledTimes(3);
      expect(random).toHaveBeenCalledTimes(2); // not drawn for the call it disabled
      expect(contexts.map((ctx) => ctx.attempt)).toEqual([1, 1, 1]);
    });

    it('an enabled function is asked for every attempt inside a retry', async () => {
      const enabled = vi.fn(({ attempt }: ExecutionContext) => attempt < 3);
      const stack = compose(retryWithBackoff({ maxRetries: 3, baseDelay: 0 }), build({ rate: 1, enabled }));
      const result = await stack.execute(({ attempt }) => (attempt === 3 ? 'third' : Promise.reject(new Error(`attempt ${attempt}`))));
      // A fault is injected and retried until attempt 3; a latency (0) lets attempts 1 and 2 fail on their own; an outcome answers the first.
      expect(result).toBe(name === 'chaosOutcome' ? 'injected' : 'third');
      expect(enabled.mock.calls.length).toBe(name === 'chaosOutcome' ? 1 : 3);
    });

    it('an enabled function that throws fails the call with what it threw', async () => {
      const bug = new Error('flag service down');
      const policy = build({
        rate: 1,
        enabled: () => {
          throw bug;
        },
      });
      const fn = vi.fn();
      await expect(policy.execute(fn)).rejects.toBe(bug);
      expect(fn).not.toHaveBeenCalled();
    });

    it('an enabled function that returns a promise is refused with a TypeError, and its rejection reported', async () => {
      const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      const policy = build({ rate: 1, enabled: async () => Promise.reject(new Error('async flag')) });
      await expect(policy.execute(() => 'ran')).rejects.toThrow(new TypeError(`${name} enabled must return its answer synchronously, got a promise (an async function?)`));
      await flush();
      expect(reported).toHaveBeenCalledTimes(1);
    });

    it('switched per request through AsyncLocalStorage', async () => {
      const request = new AsyncLocalStorage<{ chaos: boolean }>();
      const policy = build({ rate: 1, enabled: () => request.getStore()?.chaos === true });
      expect(await injectedInto(policy, () => request.run({ chaos: false }, () => policy.execute(() => 'ran')))).toBe(false);
      expect(await injectedInto(policy, () => request.run({ chaos: true }, () => policy.execute(() => 'ran')))).toBe(true);
      expect(await injectedInto(policy)).toBe(false);
    });

    it('keeps its name', () => {
      expect(build({ rate: 1, name: 'payments-chaos' }).name).toBe('payments-chaos');
      expect(build({ rate: 1 }).name).toBeUndefined();
    });
  });

  it('chaosFault: fault is required, an error or a function', () => {
    expect(() => chaosFault({ rate: 1 } as never)).toThrow(new TypeError('chaosFault(options): fault is required (an error, or a function returning one)'));
    expect(() => chaosFault({ rate: 1, fault: 'boom' } as never)).toThrow(new TypeError('chaosFault fault must be an error or a function returning one, got "boom"'));
    expect(() => chaosFault({ rate: 1, fault: null } as never)).toThrow(TypeError);
    expect(() => chaosFault({ rate: 1, faultGenerator: () => injected } as never)).toThrow(`(another library's name: bulwark's is "fault" (an error, or a function of the call))`);
    expect(() => chaosFault(undefined as never)).toThrow(new TypeError('chaosFault(options): options with rate and fault are required, got undefined'));
  });

  it('chaosLatency: latency is required, ms ≥ 0 or Infinity, or a function; clock must be a Clock', () => {
    expect(() => chaosLatency({ rate: 1 } as never)).toThrow(new TypeError('chaosLatency(options): latency is required (ms, or a function returning them)'));
    expect(() => chaosLatency({ rate: 1, latency: -1 })).toThrow(new RangeError('chaosLatency latency must be a duration in ms ≥ 0 or Infinity, got -1'));
    expect(() => chaosLatency({ rate: 1, latency: Number.NaN })).toThrow(new RangeError('chaosLatency latency must be a duration in ms ≥ 0 or Infinity, got NaN'));
    expect(() => chaosLatency({ rate: 1, latency: '5' as never })).toThrow(new TypeError('chaosLatency latency must be a number of ms, got "5"'));
    expect(() => chaosLatency({ rate: 1, latency: 5, clock: {} as never })).toThrow(new TypeError('chaosLatency clock must be a Clock with now(), setTimeout() and clearTimeout(), got an object'));
    expect(() => chaosLatency({ rate: 1, latency: 5, timeProvider: noClock } as never)).toThrow(`bulwark's is "clock"`);
    expect(() => chaosLatency({ rate: 1, latencyGenerator: () => 5 } as never)).toThrow(`bulwark's is "latency" (ms, or a function of the call)`);
    for (const latency of [0, 1, 1.5, 2_147_483_647, 1e12, Infinity]) expect(() => chaosLatency({ rate: 1, latency })).not.toThrow();
  });

  it('chaosOutcome: outcome is required (undefined included)', () => {
    expect(() => chaosOutcome({ rate: 1 } as never)).toThrow(new TypeError('chaosOutcome(options): outcome is required (a value, or a function returning one)'));
    expect(() => chaosOutcome({ rate: 1, outcome: undefined })).not.toThrow();
    expect(() => chaosOutcome({ rate: 1, outcomeGenerator: () => 1 } as never)).toThrow(`bulwark's is "outcome" (a value, or a function of the call)`);
  });
});

describe('seededRandom', () => {
  it('draws the same sequence for the same seed, another for another seed', () => {
    const draw = (seed: number): number[] => Array.from({ length: 1_000 }, seededRandom(seed));
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(draw(-7)).not.toEqual(draw(7));
    expect(draw(2 ** 32 + 7)).toEqual(draw(7)); // seeds equal modulo 2³², as documented
  });

  it('is mulberry32: the draws of the reference implementation, so a seed replays the same run across versions', () => {
    // mulberry32 as published (github.com/bryc/code, jshash/PRNGs.md), seeds 0 and 42
    expect(Array.from({ length: 3 }, seededRandom(0))).toEqual([0.26642920868471265, 0.0003297457005828619, 0.2232720274478197]);
    expect(Array.from({ length: 3 }, seededRandom(42))).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  });

  it('draws numbers in [0, 1), spread evenly', () => {
    const random = seededRandom(123);
    const buckets = Array.from({ length: 10 }, () => 0);
    for (let i = 0; i < 100_000; i++) {
      const r = random();
      expect(r >= 0 && r < 1).toBe(true);
      buckets[Math.floor(r * 10)]! += 1;
    }
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it.each([
    [1.5, new RangeError('seededRandom(seed): seed must be a safe integer, got 1.5')],
    [Number.NaN, new RangeError('seededRandom(seed): seed must be a safe integer, got NaN')],
    [2 ** 53, new RangeError(`seededRandom(seed): seed must be a safe integer, got ${2 ** 53}`)],
    ['42', new TypeError('seededRandom(seed): seed must be a number, got "42"')],
  ])('refuses the seed %o', (seed, error) => {
    expect(() => seededRandom(seed as number)).toThrow(error);
  });

  it.each([0, 1, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER])('accepts the seed %d', (seed) => {
    const r = seededRandom(seed)();
    expect(r >= 0 && r < 1).toBe(true);
  });
});
