/**
 * A policy of a stack as the engine runs it.
 */
import { reportCallbackError } from '../shared/report.js';
import type { LayerCall } from './contract.js';
import type { CallObserver } from './observe.js';

/**
 * A policy of a stack as the engine runs it: its hooks as fields of one object shape shared by
 * every kind. Reading `enter` off five different policy classes makes every such read in the
 * engine megamorphic (a slow, global lookup); reading it off steps keeps them monomorphic.
 * The hooks are the policy's own methods, unbound (called with the policy as `this`).
 */
export interface Step {
  readonly layer: object;
  readonly enter: ((call: LayerCall) => unknown) | undefined;
  readonly onValue: ((token: unknown, value: unknown, call: LayerCall) => unknown) | undefined;
  readonly onError: ((token: unknown, error: unknown, call: LayerCall) => unknown) | undefined;
  readonly released: ((token: unknown) => void) | undefined;
  readonly run: ((call: LayerCall) => Promise<unknown>) | undefined;
  /** True for a policy that may abort the work inside it (it opens abort scopes). */
  readonly abortsWork: boolean;
  /** Watches every call through the policy (a metrics registry); undefined costs nothing. */
  observer: CallObserver | undefined;
}

/** Runs a policy's `released` hook; what it throws is reported, never passed to a call. */
export function release(step: Step, token: unknown): void {
  const released = step.released;
  if (released === undefined) return;
  try {
    released.call(step.layer, token);
  } catch (error) {
    reportCallbackError('a policy\'s released() hook', error);
  }
}
