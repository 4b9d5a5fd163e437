/**
 * Checking a saved breaker state before it is loaded: every field, and that its window fits
 * the breaker's options.
 */
import * as validate from '../shared/validate.js';
import { SNAPSHOT_VERSION, plainObject, windowCalls, windowShape, type BreakerSettings } from './options.js';
import type { CircuitState } from './types.js';
import { describeShape, sameShape, type WindowContents, type WindowShape } from './window.js';

/** A snapshot that passed every check. */
export interface CheckedSnapshot {
  readonly state: CircuitState;
  readonly consecutiveFailures: number;
  readonly consecutiveOpens: number;
  readonly openedAt: number | undefined;
  readonly retryAt: number;
  readonly breakDuration: number;
  readonly trialSuccesses: number;
  readonly window: WindowContents | undefined;
}

function epochTime(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a time in epoch ms, got ${validate.show(value)}`);
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be a finite time in epoch ms, got ${validate.show(value)}`);
  return value;
}

function checkWindowContents(name: string, value: unknown): WindowContents {
  const window = plainObject(name, value);
  if (Array.isArray(window['outcomes'])) {
    const calls = windowCalls(`${name}.calls`, window['calls']);
    const outcomes = window['outcomes'] as unknown[];
    if (outcomes.length > calls) throw new RangeError(`${name}.outcomes holds ${outcomes.length} outcomes, more than the window's ${calls} calls`);
    outcomes.forEach((code, at) => {
      if (code !== 0 && code !== 1 && code !== 2 && code !== 3) throw new RangeError(`${name}.outcomes[${at}] must be 0, 1, 2 or 3, got ${validate.show(code)}`);
    });
    return { calls, outcomes: outcomes as number[] };
  }
  if (Array.isArray(window['counts'])) {
    const shape = windowShape(name, { duration: window['duration'], buckets: window['buckets'] });
    // Stryker disable next-line all: unreachable, windowShape() is given no calls here; it narrows the type
    if (!('duration' in shape)) throw new TypeError(`${name} must hold outcomes or counts`);
    const counts = (window['counts'] as unknown[]).map((bucket, at): [number, number, number, number] => {
      const where = `${name}.counts[${at}]`;
      if (!Array.isArray(bucket) || bucket.length !== 4) throw new TypeError(`${where} must be [start, calls, failures, slowCalls], got ${validate.show(bucket)}`);
      const start = epochTime(`${where}[0]`, bucket[0]);
      const calls = validate.count(`${where}[1] (calls)`, bucket[1], 0);
      const failures = validate.count(`${where}[2] (failures)`, bucket[2], 0);
      const slowCalls = validate.count(`${where}[3] (slow calls)`, bucket[3], 0);
      if (failures > calls || slowCalls > calls) throw new RangeError(`${where} counts more failures or slow calls than calls`);
      return [start, calls, failures, slowCalls];
    });
    return { duration: shape.duration, buckets: shape.buckets, counts };
  }
  throw new TypeError(`${name} must hold outcomes (a count window) or counts (a time window)`);
}

function shapeOf(contents: WindowContents): WindowShape {
  return 'outcomes' in contents ? { calls: contents.calls } : { duration: contents.duration, buckets: contents.buckets };
}

/** Checks a snapshot against the breaker's settings; throws a `TypeError` or `RangeError` naming what is wrong. */
export function checkSnapshot(name: string, value: unknown, settings: BreakerSettings): CheckedSnapshot {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${name} must be a snapshot from breaker.toJSON(), got ${validate.show(value)}`);
  }
  const snapshot = value as Record<string, unknown>;
  const version = snapshot['version'];
  if (version !== SNAPSHOT_VERSION) {
    throw new (typeof version === 'number' ? RangeError : TypeError)(
      `${name}.version must be ${SNAPSHOT_VERSION} (the snapshot format this version of bulwark reads), got ${validate.show(version)}`,
    );
  }
  const state = validate.oneOf(`${name}.state`, snapshot['state'], ['closed', 'open', 'half-open', 'isolated'] as const);
  const consecutiveFailures = validate.count(`${name}.consecutiveFailures`, snapshot['consecutiveFailures'], 0);
  const consecutiveOpens = validate.count(`${name}.consecutiveOpens`, snapshot['consecutiveOpens'], 0);
  const trialSuccesses = validate.count(`${name}.trialSuccesses`, snapshot['trialSuccesses'], 0);
  epochTime(`${name}.savedAt`, snapshot['savedAt']);
  const openedAt = snapshot['openedAt'] === null ? undefined : epochTime(`${name}.openedAt`, snapshot['openedAt']);
  let retryAt = 0;
  let breakDuration = 0;
  if (state === 'open' || state === 'half-open') {
    if (openedAt === undefined) throw new TypeError(`${name}.openedAt must be a time in epoch ms for a ${state} circuit, got null`);
    breakDuration = validate.duration(`${name}.breakDuration`, snapshot['breakDuration']);
  }
  if (state === 'open') {
    retryAt = epochTime(`${name}.retryAt`, snapshot['retryAt']);
    if (openedAt !== undefined && (retryAt < openedAt || retryAt - openedAt > validate.MAX_TIMER_DELAY)) {
      throw new RangeError(`${name}.retryAt must be from openedAt to openedAt + ${validate.MAX_TIMER_DELAY} ms, got ${retryAt} (openedAt ${openedAt})`);
    }
  }
  const savedSlowCall = snapshot['slowCallDuration'];
  if (savedSlowCall !== null) validate.duration(`${name}.slowCallDuration`, savedSlowCall);
  let window: WindowContents | undefined;
  if (snapshot['window'] !== null) {
    window = checkWindowContents(`${name}.window`, snapshot['window']);
    const saved = shapeOf(window);
    if (!sameShape(saved, settings.window)) {
      const ours = settings.window === undefined ? 'has no window (neither failureRate nor slowCall)' : `has a window of ${describeShape(settings.window)}`;
      throw new RangeError(
        `${name} holds the outcomes of a window of ${describeShape(saved)}, but this breaker ${ours}: ` +
          'restore it into a breaker with the options it was saved with, or build this one without initialState',
      );
    }
    if (savedSlowCall !== (settings.slowCallDuration ?? null)) {
      throw new RangeError(
        `${name} holds slow calls measured against slowCall.duration ${validate.show(savedSlowCall)}, but this breaker's is ${validate.show(settings.slowCallDuration ?? null)}: ` +
          'restore it into a breaker with the options it was saved with, or build this one without initialState',
      );
    }
  }
  return { state, consecutiveFailures, consecutiveOpens, openedAt, retryAt, breakDuration, trialSuccesses, window };
}

