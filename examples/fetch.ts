/**
 * Wrapping `fetch` with bulwark: `resilientFetchJson(url)` GETs JSON through a circuit
 * breaker, a retry with full jitter and a per-attempt timeout whose `ctx.signal` reaches
 * `fetch`, so an attempt that hangs is really cancelled (its socket closed), not just abandoned.
 *
 * What is retried: network failures (undici and browsers reject with a `TypeError`), 5xx and
 * 429 answers, timeouts. What is not: other 4xx answers (asking again gets the same answer)
 * and a body that is not JSON. The breaker counts the same failures, so a stream of 404s does
 * not open it.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/fetch.ts [url]
 * Without a url it starts a local server that fails twice, then answers. Importing this file
 * only builds the policies: it touches no network.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CircuitBreaker, compose, isTimeoutError, retryWithBackoff, withTimeout } from 'bulwark';
import { runMain } from './is-main.js';

/** A response whose status is not 2xx. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  /** The HTTP status, e.g. 503. */
  readonly status: number;
  /** The URL that answered. */
  readonly url: string;

  constructor(status: number, statusText: string, url: string) {
    super(`HTTP ${status}${statusText === '' ? '' : ` ${statusText}`} from ${url}`);
    this.status = status;
    this.url = url;
  }
}

/**
 * True for a failure worth trying again, which is also a failure of the dependency: a network
 * error, a timeout, a 5xx or a 429.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof HttpError) return error.status >= 500 || error.status === 429;
  // fetch rejects with a TypeError for a refused, reset or unresolvable connection (p-retry
  // #37 fell for "TypeErrors are programmer errors"). The URL is parsed before the call, so
  // a TypeError from inside the stack is the network's.
  if (error instanceof TypeError) return true;
  return isTimeoutError(error);
}

/** One breaker per dependency: build one stack per host you call, not one for the whole app. */
export const breaker = new CircuitBreaker({
  failureThreshold: 5,
  recoveryTimeout: 30_000,
  isFailure: isTransient,
  name: 'http',
});

export const retry = retryWithBackoff({
  maxRetries: 3,
  baseDelay: 200,
  maxDelay: 5_000,
  jitter: 'full',
  retryOn: isTransient,
  name: 'http',
});

/** Breaker outside the retry (one failure per call), timeout inside it (a deadline per attempt). */
export const httpStack = compose(breaker, retry, withTimeout(5_000, { name: 'http' }));

/** Options of one {@link resilientFetchJson} call. */
export interface FetchJsonOptions {
  /** Cancels the whole call: attempts, and the sleeps between them. */
  signal?: AbortSignal | undefined;
  headers?: Record<string, string> | undefined;
}

/**
 * GETs `url` and parses its JSON body, with retries, a per-attempt timeout and the breaker.
 * Rejects with an {@link HttpError} for a non-2xx answer, a `TimeoutError`, a
 * `CircuitOpenError`, the network's `TypeError`, or the caller's abort reason.
 *
 * The result is typed by the caller and not checked: validate it (zod, valibot…) in real code.
 */
export async function resilientFetchJson<T = unknown>(url: string | URL, options: FetchJsonOptions = {}): Promise<T> {
  const target = new URL(url); // a malformed URL throws here, before any retry
  const headers = { accept: 'application/json', ...options.headers };
  return httpStack.execute(
    async ({ signal }) => {
      // The body is read inside the attempt, so the timeout also covers a body that stalls.
      const response = await fetch(target, { headers, signal });
      if (!response.ok) {
        await response.body?.cancel(); // frees the connection for the next attempt
        throw new HttpError(response.status, response.statusText, response.url);
      }
      return (await response.json()) as T;
    },
    { signal: options.signal },
  );
}

async function main(): Promise<void> {
  retry.on('retry', ({ error, attempt, delay }) => {
    console.log(`attempt ${attempt} failed (${error instanceof Error ? error.message : String(error)}); retrying in ${Math.round(delay)} ms`);
  });
  const given = process.argv[2];
  if (given !== undefined) {
    console.log(await resilientFetchJson(given));
    return;
  }
  // A local server that answers 503, then drops the connection, then answers.
  let requests = 0;
  const server = createServer((request, response) => {
    requests++;
    if (requests === 1) response.writeHead(503).end();
    else if (requests === 2) request.socket.destroy();
    else response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ hello: 'world', requests }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    console.log('answer:', await resilientFetchJson<{ hello: string }>(`http://127.0.0.1:${port}/hello`));
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

runMain(import.meta.url, main);
