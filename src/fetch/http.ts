/**
 * What bulwark/fetch knows of HTTP, apart from the policies: which methods may be sent twice,
 * which bodies can be sent again, which statuses are transient, and how long a `Retry-After`
 * asks to wait. Pure functions of a request or a response; nothing here holds state.
 */

/**
 * The least of a response bulwark/fetch reads: its status, one header, and its body to cancel
 * it when the response is discarded. A `Response` of any fetch (Node's, undici's, a
 * browser's) has them.
 */
export interface FetchResponse {
  /** The HTTP status. */
  readonly status: number;
  /** The headers, read with `get` (`Retry-After`). */
  readonly headers: { get(name: string): string | null };
  /** The body, if any, whose `cancel` frees the connection of a response no caller gets. */
  readonly body: { cancel(reason?: any): Promise<void> } | null;
}

/**
 * A function with the shape of `fetch`: the global one (the default), undici's, or any other
 * returning a promise of a response.
 */
export type FetchFunction = (input: any, init?: any) => Promise<FetchResponse>;

/** Methods RFC 9110 defines as idempotent: sending one twice has the effect of sending it once. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Safe methods (reads): the only ones hedged, since a hedge runs two copies at once. */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** True for a method that may be retried without asking: GET, HEAD, OPTIONS, TRACE, PUT, DELETE. */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** True for a read (GET, HEAD, OPTIONS, TRACE): the methods a hedge may send twice at once. */
export function isSafe(method: string): boolean {
  return SAFE.has(method);
}

/** The default transient statuses: 408 Request Timeout, 429 Too Many Requests and every 5xx. */
export function isTransientStatus(status: number): boolean {
  return status >= 500 ? status <= 599 : status === 408 || status === 429;
}

/** True when `headers` (a `Headers`, an array of pairs, or a record) has a header `name` (lower case). */
export function hasHeader(headers: unknown, name: string): boolean {
  if (headers === null || typeof headers !== 'object') return false;
  // Any iterable of pairs (a Headers yields its names in lower case; a Map's `has` would be case-sensitive).
  if (typeof (headers as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function') {
    for (const pair of headers as Iterable<unknown>) {
      if (Array.isArray(pair) && String(pair[0]).toLowerCase() === name) return true;
    }
    return false;
  }
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

/**
 * True for a request body fetch can send again from the same value: none, a string, bytes, a
 * `Blob`, `FormData` or `URLSearchParams`. A stream (a `ReadableStream`, an async iterable) is
 * read as it is sent: it can be sent once only.
 */
export function isReplayable(body: unknown): boolean {
  if (body === undefined || body === null || typeof body === 'string') return true;
  if (typeof body !== 'object') return false;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return true;
  if (typeof SharedArrayBuffer !== 'undefined' && body instanceof SharedArrayBuffer) return true;
  // By tag, not class: undici's FormData and Blob are not the global classes.
  return REPLAYABLE_TAGS.has(Object.prototype.toString.call(body));
}

const REPLAYABLE_TAGS = new Set(['[object URLSearchParams]', '[object Blob]', '[object File]', '[object FormData]']);

/** A `Request` (of any fetch implementation): an object with a string `url` and `method`, and headers. */
export interface RequestLike {
  readonly url: string;
  readonly method: string;
  readonly headers: unknown;
  readonly body: unknown;
  readonly signal?: AbortSignal | undefined;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** True for a `Request` of any fetch implementation (checked by shape: undici's is not the global class). */
export function isRequest(input: unknown): input is RequestLike {
  return (
    typeof input === 'object' && input !== null && !(input instanceof URL) &&
    typeof (input as RequestLike).url === 'string' && typeof (input as RequestLike).method === 'string'
  );
}

/** The fields of a `Request` that `RequestInit` can carry, copied when a request is sent again from its parts. */
const REQUEST_FIELDS = ['redirect', 'referrer', 'referrerPolicy', 'credentials', 'cache', 'integrity', 'keepalive'] as const;

/** A `Request`'s fields as a `RequestInit` (its body apart: the caller reads it once). */
export function initOf(request: RequestLike): Record<string, unknown> {
  const init: Record<string, unknown> = { method: request.method, headers: request.headers };
  for (const field of REQUEST_FIELDS) {
    const value = (request as unknown as Record<string, unknown>)[field];
    // A request's defaults need no copy ('about:client' as a referrer is refused by some runtimes).
    if (value !== undefined && value !== '' && value !== 'about:client') init[field] = value;
  }
  return init;
}

/** The scheme and authority of an absolute http(s) URL as written, before any parsing. */
const AUTHORITY = /^https?:\/\/[^/?#]*/i;
/** Origins by the scheme and authority they were written with: a client calls few origins, many times. */
const origins = new Map<string, string>();
const MAX_REMEMBERED = 256;

/**
 * The origin of a URL (`https://api.example.com:8443`), the key of its breaker and metrics. A
 * string is parsed by `URL` the first time its scheme and authority are seen (the origin is
 * normalised: case, default port), then found by them (a parse costs a microsecond per call).
 */
export function originOf(url: string | URL): string {
  if (url instanceof URL) return url.origin;
  const prefix = AUTHORITY.exec(url)?.[0];
  if (prefix !== undefined) {
    const known = origins.get(prefix);
    if (known !== undefined) return known;
  }
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  const origin = new URL(url, base).origin;
  if (prefix !== undefined) {
    if (origins.size >= MAX_REMEMBERED) origins.clear();
    origins.set(prefix, origin);
  }
  return origin;
}

/**
 * How long, in ms, a response's `Retry-After` asks to wait, or `undefined` when it has none
 * or it cannot be read. Delta-seconds (`120`) are exact. An HTTP-date is read against the
 * response's own `Date` header when it has a valid one (both are the server's clock, so a
 * client whose clock is off waits as the server meant), else against `now` (epoch ms). A date
 * in the past is a wait of 0.
 */
export function retryAfterMs(response: FetchResponse, now: number): number | undefined {
  let value: string | null;
  try {
    value = response.headers.get('retry-after');
  } catch {
    return undefined;
  }
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1_000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  let reference = now;
  const date = response.headers.get('date');
  if (date !== null) {
    const served = Date.parse(date);
    if (!Number.isNaN(served)) reference = served;
  }
  return Math.max(0, at - reference);
}

/** Cancels a discarded response's body so its connection is freed; a body already read or locked is left as it is. */
export function discard(response: FetchResponse): void {
  const body = response.body;
  if (body === null || body === undefined) return;
  try {
    // A locked body (someone reads it) rejects: nothing of ours to free then.
    body.cancel().then(undefined, ignore);
  } catch {
    // A body of another shape: nothing to free.
  }
}

function ignore(): void {}
