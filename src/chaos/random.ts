/**
 * A small seeded random source for reproducible chaos runs.
 */
import { show } from '../shared/show.js';

/**
 * Returns a random source in [0, 1) that draws the same sequence for the same `seed`, for the
 * `random` option of the chaos policies (and of `retryWithBackoff`): a run that failed under
 * injected chaos replays exactly with its seed. The generator is mulberry32: 32 bits of state,
 * a period of 2³², fast, and statistically good enough for sampling, not for cryptography.
 *
 * @param seed - any safe integer; seeds equal modulo 2³² draw the same sequence.
 * @example
 * ```ts
 * const seed = Number(process.env.CHAOS_SEED ?? Date.now());
 * console.log(`chaos seed ${seed}`); // replay a failing run with CHAOS_SEED=<seed>
 * const faults = chaosFault({ rate: 0.1, fault: new Error('injected'), random: seededRandom(seed) });
 * ```
 */
export function seededRandom(seed: number): () => number {
  if (typeof seed !== 'number') throw new TypeError(`seededRandom(seed): seed must be a number, got ${show(seed)}`);
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seededRandom(seed): seed must be a safe integer, got ${show(seed)}`);
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
