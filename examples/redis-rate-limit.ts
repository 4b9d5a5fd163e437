/**
 * A partner API allows 50 requests a second for the whole service, however many replicas run.
 * Every replica builds the same RedisRateLimiter on its own Redis client: one bucket in Redis,
 * decided on the server's clock. While Redis is down each replica falls back to a local limit.
 */
import { compose, isRateLimitedError, retryWithBackoff, withTimeout, type Policy } from 'bulwark';
import { RedisRateLimiter, type RedisClientLike } from 'bulwark/redis';

export function partnerStack(redis: RedisClientLike, onDown: (message: string) => void = () => {}): { policy: Policy; limit: RedisRateLimiter } {
  const limit = new RedisRateLimiter(redis, { name: 'partner-api', rate: 50, interval: 1_000, maxWait: 200, timeout: 100 });
  limit.on('storeDown', ({ error }) => onDown(error.message));
  // The limit innermost: each retry attempt takes its own permit.
  const policy = compose(retryWithBackoff({ maxRetries: 2 }), withTimeout(2_000), limit);
  return { policy, limit };
}

/** Answers 429 with Retry-After when the fleet's budget is spent. */
export async function callPartner(policy: Policy, send: () => Promise<string>): Promise<{ status: number; body: string; retryAfter?: number }> {
  try {
    return { status: 200, body: await policy.execute(send) };
  } catch (error) {
    if (isRateLimitedError(error)) return { status: 429, body: 'busy', retryAfter: Math.ceil(error.retryAfter / 1_000) };
    throw error;
  }
}
