import { describeError } from './shared/show.js';

/**
 * How an attempt ended, for the policies that classify returned values as well as errors:
 * `retryWithBackoff`'s `delay` hook and the events of every policy with a `…Result` option.
 */

/**
 * How an attempt ended: `ok` is `true` when it returned `value` (a value a `…Result`
 * predicate classified as a failure, such as an HTTP 503), `false` when it threw `error`.
 *
 * @typeParam T - the type of the value.
 * @example
 * ```ts
 * const delay = (attempt: number, outcome: Outcome, backoff: number) =>
 *   outcome.ok && outcome.value instanceof Response ? retryAfterMs(outcome.value) ?? backoff : backoff;
 * ```
 */
export type Outcome<T = unknown> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** The log fields of an event's outcome: the error as `{ name, message }`, or the value's type and numeric `status`, never its contents. */
export function outcomeFields(payload: { readonly error: unknown; readonly value?: unknown }): Record<string, unknown> {
  if (!('value' in payload)) return { error: describeError(payload.error) };
  const status = statusOf(payload.value);
  return { result: status === undefined ? { type: typeof payload.value } : { type: typeof payload.value, status } };
}

/** An event's outcome for a log message: the error's message, or `returned a failing result (status 503)`. */
export function outcomeText(payload: { readonly error: unknown; readonly value?: unknown }): string {
  if (!('value' in payload)) return describeError(payload.error).message;
  const status = statusOf(payload.value);
  return `returned a failing result${status === undefined ? '' : ` (status ${status})`}`;
}

/** A value's numeric `status` (an HTTP response's), if it has one. */
function statusOf(value: unknown): number | undefined {
  try {
    const status = (value as { status?: unknown } | null)?.status;
    return typeof status === 'number' ? status : undefined;
  } catch {
    return undefined;
  }
}
