/**
 * Leaving the policies of a frame with the outcome of what they wrap, innermost first: each
 * may pass it on, replace it, or answer later.
 */
import type { Call } from './call.js';
import type { Frame } from './frame.js';
import { FAILURE, REFUSAL, SUCCESS, finishObserving, newPass, type CallObserver, type Outcome } from './observe.js';
import { release, type Step } from './step.js';
import type { Waiting } from './waiters.js';

function isPromise(value: unknown): value is Promise<unknown> {
  return value instanceof Promise;
}

/** Which hook runs now (see `Call`). */
const IDLE = 0;
const LEAVING = 2;

export function leaveGroup(call: Call, frame: Frame, inner: Promise<unknown>): Promise<unknown> {
  if (frame.to === frame.from) return inner;
  return inner.then(
    (value) => leaveFrom(call, frame, frame.to, value),
    (error: unknown) => leaveWithErrorFrom(call, frame, frame.to, error),
  );
}

/** Leaves the entered policies below `top` (exclusive), innermost first, with a value. */
export function leaveFrom(call: Call, frame: Frame, top: number, value: unknown): unknown {
  // Stryker disable next-line ConditionalExpression: newPass() only makes the next observer read its clock afresh, and every pass that reads one starts with its own: an extra one costs one more reading, in the same synchronous pass.
  if (frame.observations !== undefined) newPass();
  const steps = call.steps;
  const from = frame.from;
  for (let at = top - 1; at >= from; at--) {
    const step = steps[at] as Step;
    const slot = at - from;
    const onValue = step.onValue;
    if (onValue !== undefined) {
      let answer: unknown;
      enterHook(call, at, frame);
      try {
        answer = onValue.call(step.layer, frame.token(slot), value, call);
      } catch (error) {
        call.phase = IDLE;
        left(frame, slot, step, FAILURE, error);
        return leaveWithErrorFrom(call, frame, at, error);
      }
      call.phase = IDLE;
      if (isPromise(answer)) return leaveLater(call, frame, at, answer);
      value = answer;
    }
    left(frame, slot, step, SUCCESS, undefined);
  }
  return value;
}

/** Leaves the entered policies below `top` (exclusive), innermost first, with an error: a policy may answer instead. */
export function leaveWithErrorFrom(call: Call, frame: Frame, top: number, error: unknown): unknown {
  // Stryker disable next-line ConditionalExpression: newPass() only makes the next observer read its clock afresh, and every pass that reads one starts with its own: an extra one costs one more reading, in the same synchronous pass.
  if (frame.observations !== undefined) newPass();
  const steps = call.steps;
  const from = frame.from;
  for (let at = top - 1; at >= from; at--) {
    const step = steps[at] as Step;
    const slot = at - from;
    const token = frame.token(slot);
    if (slot === frame.waitingSlot) {
      // It never let the call in (it refused it, or the call was aborted while it waited): it has nothing to leave.
      observeEnd(frame, slot, (token as Waiting).refused ? REFUSAL : FAILURE, error);
      frame.skipScopes(slot);
      continue;
    }
    const onError = step.onError;
    if (onError === undefined) {
      left(frame, slot, step, FAILURE, error);
      continue;
    }
    let answer: unknown;
    enterHook(call, at, frame);
    try {
      answer = onError.call(step.layer, token, error, call);
    } catch (thrown) {
      call.phase = IDLE;
      left(frame, slot, step, FAILURE, thrown);
      error = thrown;
      continue;
    }
    call.phase = IDLE;
    if (!isPromise(answer)) {
      left(frame, slot, step, SUCCESS, undefined);
      return leaveFrom(call, frame, at, answer);
    }
    return leaveLater(call, frame, at, answer);
  }
  throw error;
}

/** A policy answers later (a retry, a fallback function): the policies outside it wait for that. */
function leaveLater(call: Call, frame: Frame, at: number, answer: Promise<unknown>): Promise<unknown> {
  const slot = at - frame.from;
  const step = call.steps[at] as Step;
  return answer.then(
    (value) => {
      // A later turn: the clock is read afresh, not reused from whatever pass ran last.
      newPass();
      left(frame, slot, step, SUCCESS, undefined);
      return leaveFrom(call, frame, at, value);
    },
    (failure: unknown) => {
      newPass();
      left(frame, slot, step, FAILURE, failure);
      return leaveWithErrorFrom(call, frame, at, failure);
    },
  );
}

function enterHook(call: Call, at: number, frame: Frame): void {
  call.phase = LEAVING;
  call.at = at;
  call.here = undefined;
  call.frame = frame;
}

/** The policy at `slot` is left: its observer hears how, its work is released or counted down. */
function left(frame: Frame, slot: number, step: Step, outcome: Outcome, error: unknown): void {
  // Stryker disable next-line ConditionalExpression: observeEnd() checks it too; the guard spares a call.
  if (frame.observations !== undefined) observeEnd(frame, slot, outcome, error);
  // Only the first 31 slots have a bit (trackWork): `1 << 32` would be slot 0's.
  // Stryker disable next-line ConditionalExpression,EqualityOperator: `releaseAfterLeave !== 0` only spares the rest when no bit is set, and slot 31's bit is never set.
  if (frame.releaseAfterLeave !== 0 && slot < 31 && (frame.releaseAfterLeave & (1 << slot)) !== 0) release(step, frame.token(slot));
  // Stryker disable next-line ConditionalExpression: closeScopes() at the base closes nothing and leaves the cursor there; the guard spares a call.
  if (frame.cursor !== frame.base) frame.closeScopes(slot);
}

function observeEnd(frame: Frame, slot: number, outcome: Outcome, error: unknown): void {
  const observations = frame.observations;
  if (observations === undefined) return;
  const observer = observations[2 * slot] as CallObserver | undefined;
  if (observer !== undefined) finishObserving(observer, observations[2 * slot + 1] as number, outcome, error);
}

