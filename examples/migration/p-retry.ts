/**
 * Migrating from p-retry, p-timeout and p-limit: one client written with the three packages
 * and with bulwark, around the same user service. At most 5 requests at once, up to 3
 * retries with exponential backoff from 100 ms, 1 s per attempt, and a 404 never retried.
 * examples/migration/p-retry.test.ts runs both against the same failing service and shows
 * where they agree and where they differ (docs/migrating-from-p-retry.md).
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/migration/p-retry.ts
 */
import pLimit from 'p-limit';
import pRetry, { AbortError } from 'p-retry';
import pTimeout from 'p-timeout';
import { Bulkhead, compose, retryWithBackoff, withTimeout } from 'bulwark';
import { runMain } from '../is-main.js';

export interface User {
  readonly id: string;
  readonly name: string;
}

/** The service's answer to an unknown id: an answer, not a failure worth retrying. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** The call both clients protect. */
export type GetUser = (id: string, signal?: AbortSignal) => Promise<User>;

/** Before: p-limit around p-retry around p-timeout. */
export function pRetryClient(getUser: GetUser) {
  const limit = pLimit(5);
  const get = (id: string, signal?: AbortSignal): Promise<User> =>
    limit(() =>
      pRetry(
        async () => {
          try {
            return await pTimeout(getUser(id), { milliseconds: 1_000 });
          } catch (error) {
            if (error instanceof NotFoundError) throw new AbortError(error); // do not retry
            throw error;
          }
        },
        { retries: 3, minTimeout: 100, factor: 2, maxTimeout: 1_000, ...(signal === undefined ? {} : { signal }) },
      ),
    );
  return { get, limit };
}

/** After: one bulwark stack, outermost first. */
export function bulwarkClient(getUser: GetUser) {
  const retry = retryWithBackoff({
    maxRetries: 3,
    baseDelay: 100,
    exponentialBase: 2,
    maxDelay: 1_000,
    jitter: 'none', // p-retry's default: randomize: false
    retryOn: (error) => !(error instanceof NotFoundError),
  });
  const perAttempt = withTimeout(1_000);
  const bulkhead = new Bulkhead({ maxConcurrent: 5, maxQueue: Infinity }); // p-limit queues without bound
  const users = compose(retry, perAttempt, bulkhead);

  const get = (id: string, signal?: AbortSignal): Promise<User> => users.execute(({ signal }) => getUser(id, signal), { signal });
  return { get, retry, timeout: perAttempt, bulkhead };
}

/** A stand-in for the user service: each call answers with the next step of a script after 10 ms. */
export class ScriptedUsers {
  calls = 0;
  /** Calls whose signal was aborted while they ran. */
  aborted = 0;
  constructor(private readonly script: readonly ('ok' | 'error' | 'not-found' | 'type-error' | 'slow' | 'hang')[]) {}

  readonly get: GetUser = (id, signal) => {
    const step = this.script[Math.min(this.calls, this.script.length - 1)];
    this.calls++;
    return new Promise((resolve, reject) => {
      const answer = (): void => {
        if (step === 'error') reject(new Error(`user service failed for ${id}`));
        else if (step === 'not-found') reject(new NotFoundError(`no user ${id}`));
        else if (step === 'type-error') reject(new TypeError('Cannot read properties of undefined'));
        else resolve({ id, name: `user ${id}` });
      };
      const timer = step === 'hang' ? undefined : setTimeout(answer, step === 'slow' ? 500 : 10);
      signal?.addEventListener('abort', () => {
        this.aborted++;
        clearTimeout(timer);
        reject(signal.reason);
      }, { once: true });
    });
  };
}

async function main(): Promise<void> {
  for (const [name, build] of [['p-retry', pRetryClient], ['bulwark', bulwarkClient]] as const) {
    const service = new ScriptedUsers(['error', 'ok']);
    console.log(`${name}: ${JSON.stringify(await build(service.get).get('42'))} after ${service.calls} calls`);
  }
}

runMain(import.meta.url, main);
