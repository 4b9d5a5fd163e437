/**
 * The error `resilientFetch` throws, with `throwOnTransient`, for a transient response that is
 * the call's answer.
 */
import type { FetchResponse } from './http.js';

/**
 * A call through {@link resilientFetch} with `throwOnTransient: true` ended with a transient
 * response (408, 429, 5xx by default) once its retries were spent, or could not be retried.
 * Its message names the method, the origin and the status, never the path, the query string
 * or a header, which may carry secrets. The response's body is left unread for you: read it
 * for the server's details, or cancel it (`error.response.body?.cancel()`) to free its
 * connection at once.
 *
 * @typeParam R - the response type of the fetch in use.
 * @example
 * ```ts
 * const orders = resilientFetch({ throwOnTransient: true });
 * try {
 *   await orders('https://api.example.com/orders');
 * } catch (error) {
 *   if (isHttpError(error) && error.status === 503) showMaintenancePage();
 * }
 * ```
 */
export class HttpError<R extends FetchResponse = Response> extends Error {
  /** Always `'HttpError'`. Test with {@link isHttpError}, which knows one from another copy of bulwark. */
  override readonly name = 'HttpError' as const;
  /** The response's status. */
  readonly status: number;
  /** The request's method, upper case. */
  readonly method: string;
  /** The request's origin (`https://api.example.com`). */
  readonly origin: string;
  /** The attempts the call made. */
  readonly attempts: number;
  /** The last response, its body unread. */
  readonly response: R;

  constructor(response: R, method: string, origin: string, attempts: number) {
    super(`${method} ${origin} answered ${response.status} after ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}`);
    this.status = response.status;
    this.method = method;
    this.origin = origin;
    this.attempts = attempts;
    this.response = response;
  }
}

/**
 * True for an {@link HttpError}, also from another copy of bulwark (checked by name as well as
 * class: two copies of the library loaded in one process have two classes).
 */
export function isHttpError(error: unknown): error is HttpError<FetchResponse> {
  return error instanceof HttpError || (error instanceof Error && error.name === 'HttpError' && typeof (error as { status?: unknown }).status === 'number');
}
