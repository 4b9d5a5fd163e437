/**
 * Payments run on 20 pods. When the payment provider goes down, one shared breaker opens for all
 * of them: failures seen by any pod count together, every pod refuses within milliseconds (the
 * change is pushed over a second connection), and when the break ends the whole fleet sends the
 * provider one trial call, not one per pod.
 */
import { CircuitOpenError, compose, withTimeout, type Policy } from 'bulwark';
import { RedisCircuitBreaker, type RedisClientLike, type RedisSubscriberLike } from 'bulwark/redis';

export function paymentsStack(redis: RedisClientLike, subscriber: RedisSubscriberLike): { policy: Policy; breaker: RedisCircuitBreaker } {
  const breaker = new RedisCircuitBreaker(redis, {
    name: 'payments',
    failureThreshold: 10,
    recoveryTimeout: 5_000,
    subscriber,
  });
  // The timeout inside the breaker: a call that times out counts as a failure of the provider.
  return { policy: compose(breaker, withTimeout(2_000)), breaker };
}

/** Answers 503 with Retry-After while the provider's breaker is open. */
export async function charge(policy: Policy, send: () => Promise<string>): Promise<{ status: number; body: string; retryAfter?: number }> {
  try {
    return { status: 200, body: await policy.execute(send) };
  } catch (error) {
    if (error instanceof CircuitOpenError) return { status: 503, body: 'payments unavailable', retryAfter: Math.ceil(error.retryAfter / 1_000) };
    return { status: 502, body: 'payment failed' };
  }
}
