/**
 * The transient responses of calls in flight, as the policies' predicates see them. A policy
 * is handed the value an attempt returned and nothing of the call; the client classifies each
 * response once, as it arrives, and files the transient ones here with what the predicates
 * need (the call's deadline, the `Retry-After`). A WeakMap: a response the caller drops takes
 * its entry with it.
 */
import type { FetchResponse } from './http.js';

/** What the retry and hedge predicates need of the call a transient response belongs to. */
export interface CallFacts {
  /** When the call's total timeout expires, on the client's clock (Infinity: never). */
  readonly deadline: number;
  /** The wait before the next attempt, decided by `retryOnResult` and given by the `delay` hook. */
  plannedDelay: number;
}

/** A transient response of a call. */
export interface Transient {
  readonly call: CallFacts;
  /** What its `Retry-After` asks to wait, in ms; undefined without one. */
  readonly retryAfter: number | undefined;
}

const transients = new WeakMap<object, Transient>();

/** Files a transient response. */
export function fileTransient(response: FetchResponse, transient: Transient): void {
  transients.set(response, transient);
}

/** The facts of a transient response, or undefined for any other value. */
export function transientOf(value: unknown): Transient | undefined {
  return typeof value === 'object' && value !== null ? transients.get(value) : undefined;
}

/** The breakers' `isFailureResult`: a transient response counts as a failure of its origin. */
export function isTransientResponse(value: unknown): boolean {
  return typeof value === 'object' && value !== null && transients.has(value);
}
