/**
 * How the engine tells a watcher (a `MetricsRegistry`) about the calls through one policy,
 * reading each watcher's clock once per pass over a stack.
 */
import { reportCallbackError, watchReturned } from '../shared/report.js';

/**
 * How a call left a policy, as an observer hears it: a value, an error, or a refusal (the
 * policy turned the call away itself: its `enter` threw, or its wait was refused).
 */
export type Outcome = typeof SUCCESS | typeof FAILURE | typeof REFUSAL;
export const SUCCESS = 0;
export const FAILURE = 1;
export const REFUSAL = 2;

/**
 * Watches the calls through one policy. `started` runs as a call enters the policy and
 * returns a token (a start time); `finished` runs once when the policy's part of the call
 * settles, on the observer that saw it start. Both get a reading of the observer's `now`:
 * within one synchronous pass over a stack (entering its layers, or leaving them) the clock is
 * read once for all observers that share it, so timing five layers costs two clock reads, not
 * ten. What they throw is reported and the call goes on.
 */
export interface CallObserver {
  readonly now: () => number;
  started(time: number): number;
  finished(token: number, outcome: Outcome, error: unknown, time: number): void;
}

/** The clock read in the current pass, and its reading. */
let passClock: (() => number) | undefined;
let passTime = NaN;

/** Starts a pass: the next observer reads its clock afresh. */
export function newPass(): void {
  passClock = undefined;
}

function readClock(observer: CallObserver): number {
  const clock = observer.now;
  if (clock === passClock) return passTime;
  let time: unknown;
  try {
    time = clock();
    if (typeof time !== 'number') {
      watchReturned('the now() clock of a MetricsRegistry', time);
      time = Number.NaN;
    }
  } catch (thrown) {
    reportCallbackError('the now() clock of a MetricsRegistry', thrown);
    time = Number.NaN;
  }
  passClock = clock;
  passTime = time as number;
  return passTime;
}

/** The observer's token for a call entering its policy now; NaN when `started` threw. */
export function startObserving(observer: CallObserver): number {
  try {
    return observer.started(readClock(observer));
  } catch (thrown) {
    reportCallbackError('a call observer', thrown);
    return Number.NaN;
  }
}

export function finishObserving(observer: CallObserver, token: number, outcome: Outcome, error: unknown): void {
  try {
    observer.finished(token, outcome, error, readClock(observer));
  } catch (thrown) {
    reportCallbackError('a call observer', thrown);
  }
}

/** A call its policy refused at once: started and finished in the same instant. */
export function observeRefusal(observer: CallObserver, refusal: unknown): void {
  newPass();
  finishObserving(observer, startObserving(observer), REFUSAL, refusal);
}
