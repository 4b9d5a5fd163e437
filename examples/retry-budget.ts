/**
 * One retry budget for a whole service: its two dependencies each have their own retry
 * policy, and both draw their retries from one `RetryBudget`. While the dependencies are
 * healthy, retries are rare and the budget never says no; during an outage, the retries of
 * every caller together add at most 20 % (plus 10 a second) to the load of the failing side,
 * instead of multiplying it by 4.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/retry-budget.ts
 */
import { RetryBudget, compose, retryWithBackoff, withTimeout } from 'bulwark';
import { runMain } from './is-main.js';

/** A stand-in for a remote service: `failureRate` of its calls fail. */
export class FakeService {
  failureRate = 0;
  calls = 0;
  constructor(readonly name: string) {}

  async get(id: string): Promise<string> {
    this.calls++;
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (Math.random() < this.failureRate) throw new Error(`${this.name} unavailable`);
    return `${this.name}:${id}`;
  }
}

/** The service's dependencies and their stacks, sharing one budget. */
export function buildService() {
  const users = new FakeService('users');
  const orders = new FakeService('orders');
  // Finagle's defaults: 20 % of the calls of the last 10 s, plus 10 retries a second.
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, window: 10_000, name: 'checkout' });
  const usersRetry = retryWithBackoff({ maxRetries: 3, baseDelay: 20, maxDelay: 200, budget, name: 'users' });
  const ordersRetry = retryWithBackoff({ maxRetries: 3, baseDelay: 20, maxDelay: 200, budget, name: 'orders' });
  const getUser = compose(usersRetry, withTimeout(1_000)).wrap((id: string) => users.get(id));
  const getOrder = compose(ordersRetry, withTimeout(1_000)).wrap((id: string) => orders.get(id));

  const giveUps = { 'retries-spent': 0, 'not-retryable': 0, 'budget-spent': 0 };
  for (const retry of [usersRetry, ordersRetry]) retry.on('giveUp', ({ reason }) => giveUps[reason]++);
  let exhausted = 0;
  budget.on('exhausted', () => exhausted++);

  return { users, orders, budget, getUser, getOrder, giveUps, exhausted: () => exhausted };
}

/** Makes `calls` checkouts (a user and an order each), `batch` at a time; returns how many failed. */
export async function checkouts(service: ReturnType<typeof buildService>, calls: number, batch = 50): Promise<number> {
  let failed = 0;
  for (let done = 0; done < calls; done += batch) {
    const round = Array.from({ length: Math.min(batch, calls - done) }, (_, i) => `${done + i}`);
    const outcomes = await Promise.allSettled(round.flatMap((id) => [service.getUser(id), service.getOrder(id)]));
    failed += outcomes.filter((outcome) => outcome.status === 'rejected').length;
  }
  return failed;
}

async function main(): Promise<void> {
  const service = buildService();
  service.users.failureRate = 0.05;
  let failed = await checkouts(service, 500);
  console.log(`healthy (5 % of calls fail): 1000 calls made ${service.users.calls + service.orders.calls} attempts, ${failed} failed, budget refusals: ${service.giveUps['budget-spent']}`);

  const outage = buildService();
  outage.users.failureRate = 1;
  outage.orders.failureRate = 1;
  failed = await checkouts(outage, 500);
  const attempts = outage.users.calls + outage.orders.calls;
  console.log(`outage (every call fails): 1000 calls made ${attempts} attempts (${(attempts / 1000).toFixed(2)} per call, 4 without a budget), ${failed} failed`);
  console.log(`  give-ups: ${JSON.stringify(outage.giveUps)}; the budget allows ${outage.budget.available} more retries now`);
}

runMain(import.meta.url, main);
