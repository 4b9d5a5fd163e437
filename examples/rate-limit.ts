/**
 * Rate limiting with bulwark: a client that keeps under a partner API's quota (waiting for a
 * permit rather than failing), a server that answers 429 with Retry-After per client, and a
 * strict quota that no window may exceed. examples/rate-limit.test.ts runs them.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/rate-limit.ts
 */
import { RateLimiter, RateLimiterGroup, compose, isRateLimitedError, retryWithBackoff, withTimeout } from 'bulwark';
import { runMain } from './is-main.js';

// ── Outgoing: keep under a partner's quota ───────────────────────────────────────────────
// The partner allows 50 requests a second. A burst of our own work should queue for permits
// (up to 2 s) rather than fail; past that, fail fast. Inside the retry, every attempt takes a
// permit, as the partner counts every request. A RateLimitedError is not retried (a refusal).
export const partnerQuota = new RateLimiter({ rate: 50, interval: 1_000, maxWait: 2_000, name: 'partner' });
export const partner = compose(retryWithBackoff({ maxRetries: 2, baseDelay: 200 }), withTimeout(5_000), partnerQuota);

export async function fetchOrder(id: string, get: (url: string, signal: AbortSignal) => Promise<unknown>): Promise<unknown> {
  return partner.execute(({ signal }) => get(`https://partner.example/orders/${id}`, signal));
}

// ── Incoming: 20 requests a second per client, answered 429 beyond ────────────────────────
// One limiter per API key, made on first use; limiters of idle clients are forgotten (at most
// 50 000 kept, never one still counting). A refusal says when to come back.
export const perClient = new RateLimiterGroup({ rate: 20, interval: 1_000, name: 'clients' }, { maxKeys: 50_000 });

export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
}

export async function handle(apiKey: string, work: () => Promise<unknown>): Promise<Reply> {
  try {
    return { status: 200, headers: {}, body: await perClient.execute(apiKey, work) };
  } catch (error) {
    if (!isRateLimitedError(error)) throw error;
    return { status: 429, headers: { 'retry-after': String(Math.ceil(error.retryAfter / 1_000)) }, body: { error: error.message } };
  }
}

// ── A strict quota: never more than 3 text messages in any minute ─────────────────────────
// A token bucket would let 3 through after a quiet spell and 3 more as it refills; a sliding
// window holds every 60 s window to 3, exactly.
export const textMessages = new RateLimiter({ rate: 3, interval: 60_000, algorithm: 'sliding-window', name: 'sms' });

export async function sendText(to: string, send: (to: string) => Promise<void>): Promise<'sent' | { retryInSeconds: number }> {
  try {
    await textMessages.execute(() => send(to));
    return 'sent';
  } catch (error) {
    if (isRateLimitedError(error)) return { retryInSeconds: Math.ceil(error.retryAfter / 1_000) };
    throw error;
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const fakePartner = async (url: string): Promise<string> => `ok ${url.slice(-3)}`;
  // 60 orders at once: 50 go now (a full bucket), 10 wait for the next permits, 20 ms apart.
  const orders = await Promise.all(Array.from({ length: 60 }, (_, i) => fetchOrder(String(i).padStart(3, '0'), fakePartner)));
  console.log(`${orders.length} partner calls in ${Date.now() - started} ms (50 at once, then 50 per second)`);

  const replies = await Promise.all(Array.from({ length: 25 }, () => handle('client-a', async () => 'data')));
  console.log('client-a:', replies.map((reply) => reply.status).join(' '), '| retry-after:', replies.at(-1)?.headers['retry-after']);

  for (let i = 0; i < 4; i++) console.log('text message:', await sendText('+15550100', async () => undefined));
}

runMain(import.meta.url, main);
