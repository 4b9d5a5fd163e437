/**
 * Outcomes as results: a client whose calls answer with a status rather than throwing (an
 * HTTP-like API), where a 503 or a 429 is a failure even though nothing was thrown. The retry
 * retries them, waiting what the server's `retryAfter` asks; the breaker counts them; the
 * fallback answers with the last good catalog when the service stays unavailable. A 404 is an
 * answer, not a failure: it reaches the caller unchanged.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/outcomes.ts
 */
import { CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout, type Outcome } from 'bulwark';
import { runMain } from './is-main.js';

/** What the service answers: a status, a body, and, with a 429 or 503, how many seconds to wait. */
export interface ApiResponse {
  readonly status: number;
  readonly body: string;
  readonly retryAfterSeconds?: number;
}

/** A stand-in for a remote catalog service that answers each call with the next status of a script. */
export class FakeCatalog {
  calls = 0;
  constructor(private readonly script: readonly number[]) {}

  async get(path: string, signal: AbortSignal): Promise<ApiResponse> {
    const status = this.script[Math.min(this.calls, this.script.length - 1)] as number;
    this.calls++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    signal.throwIfAborted();
    if (status === 503 || status === 429) return { status, body: '', retryAfterSeconds: 2 };
    return { status, body: status === 200 ? `catalog ${path}` : '' };
  }
}

/** A status that says the service could not answer now: worth retrying, and a failure for the breaker. */
const transient = (value: unknown): boolean => {
  const { status } = value as ApiResponse;
  return status === 429 || status >= 500;
};

/** The wait a response asks for, in ms; `undefined` keeps the policy's own backoff. */
function retryAfter(_attempt: number, outcome: Outcome, backoff: number): number | undefined {
  if (!outcome.ok) return undefined;
  const seconds = (outcome.value as ApiResponse).retryAfterSeconds;
  // Never earlier than the server allows, never longer than a minute.
  return seconds === undefined ? undefined : Math.min(Math.max(seconds * 1_000, backoff), 60_000);
}

/** The client's stack, outermost first; `cached` is what the fallback answers with. */
export function buildClient(catalog: FakeCatalog, cached: ApiResponse = { status: 200, body: 'catalog (cached)' }) {
  const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeout: 30_000, isFailureResult: (value) => (value as ApiResponse).status >= 500, name: 'catalog' });
  const retry = retryWithBackoff({ maxRetries: 2, baseDelay: 200, retryOnResult: transient, delay: retryAfter, name: 'catalog' });
  const fallback = withFallback(cached, { handlesResult: (value) => (value as ApiResponse).status >= 500, name: 'catalog' });
  const policy = compose(fallback, breaker, retry, withTimeout(1_000));
  const get = (path: string): Promise<ApiResponse> => policy.execute(({ signal }) => catalog.get(path, signal));
  return { get, breaker, retry };
}

async function main(): Promise<void> {
  const flaky = new FakeCatalog([503, 200]);
  const client = buildClient(flaky);
  console.log('503 then 200:', await client.get('/shoes'), `after ${flaky.calls} calls`);

  const missing = new FakeCatalog([404]);
  console.log('404:', await buildClient(missing).get('/hats'), '(an answer, not a failure: no retry)');

  const down = new FakeCatalog([503]);
  const outage = buildClient(down);
  for (let i = 0; i < 4; i++) console.log(`outage call ${i + 1}:`, await outage.get('/shoes'), `breaker ${outage.breaker.state}`);
  console.log(`the service saw ${down.calls} calls: 3 per call until the breaker opened`);
}

runMain(import.meta.url, main);
