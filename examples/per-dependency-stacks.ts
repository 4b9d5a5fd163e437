/**
 * One stack per downstream dependency, as in the seed: payments and inventory each get their
 * own bulkhead, breaker, retry and timeout, so a slow inventory service cannot take the
 * slots, the breaker or the patience that payments need. Inventory has a fallback ("stock
 * unknown": the shop still sells); payments has none (an unknown payment outcome must reach
 * the caller). `wrap` and `execute` keep the types: the checks at the end of the file are
 * compiled by `npm test`.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/per-dependency-stacks.ts
 * It makes inventory hang, then sends 20 stock checks and 5 payments at once.
 */
import { Bulkhead, CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout } from 'bulwark';
import { runMain } from './is-main.js';

// ── the dependencies (stand-ins for an SDK and an HTTP API) ────────────────────────────
export interface Receipt {
  readonly orderId: string;
  readonly cents: number;
  readonly chargeId: string;
}

export interface StockLevel {
  readonly status: 'in-stock' | 'out-of-stock';
  readonly available: number;
}

/** What the inventory stack answers when the inventory service cannot. */
export interface StockUnknown {
  readonly status: 'unknown';
}

/** Work that takes `ms`, and stops at once with the signal's reason when `signal` aborts. */
function work<T>(ms: number, value: T, signal?: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(value);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A payment gateway SDK: its `charge` takes no signal, like many SDKs. */
export const paymentGateway = {
  /** The gateway deduplicates on `orderId` (an idempotency key), so a retried charge is charged once. */
  charge: (orderId: string, cents: number): Promise<Receipt> => work(20, { orderId, cents, chargeId: `ch_${orderId}` }),
};

/** The inventory service's client; `slow` makes it hang for 10 s per call. */
export const inventoryApi = {
  slow: false,
  stock(sku: string, options: { signal?: AbortSignal } = {}): Promise<StockLevel> {
    const level: StockLevel = sku.endsWith('0') ? { status: 'out-of-stock', available: 0 } : { status: 'in-stock', available: 12 };
    return work(inventoryApi.slow ? 10_000 : 15, level, options.signal);
  },
};

// ── payments: no fallback; fail loudly, fail fast ──────────────────────────────────────
export const paymentsBulkhead = new Bulkhead({ maxConcurrent: 10, maxQueue: 20, queueTimeout: 1_000, name: 'payments' });
export const paymentsBreaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 30_000, name: 'payments' });

export const payments = compose(
  paymentsBreaker,
  // Retrying a charge is safe only because the gateway deduplicates on the order id.
  retryWithBackoff({ maxRetries: 2, baseDelay: 200, maxDelay: 2_000, name: 'payments' }),
  withTimeout(5_000, { name: 'payments' }),
  paymentsBulkhead,
);

/** `(orderId: string, cents: number) => Promise<Receipt>`: the gateway's own signature, through the stack. */
export const chargeCard = payments.wrap(paymentGateway.charge);

// ── inventory: short timeout, small bulkhead, and "stock unknown" when it fails ────────
export const inventoryBulkhead = new Bulkhead({ maxConcurrent: 4, maxQueue: 4, queueTimeout: 200, name: 'inventory' });
export const inventoryBreaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 10_000, name: 'inventory' });

const stockUnknown: StockUnknown = { status: 'unknown' };

export const inventory = compose(
  withFallback(stockUnknown), // outermost: also answers for an open breaker or a full bulkhead
  inventoryBreaker,
  retryWithBackoff({ maxRetries: 1, baseDelay: 50, maxDelay: 200, name: 'inventory' }),
  withTimeout(300, { name: 'inventory' }),
  inventoryBulkhead,
);

/**
 * The stock of `sku`, or `{ status: 'unknown' }`. It uses `execute` rather than `wrap` to hand
 * `ctx.signal` to the client, so an attempt that times out really stops and frees its slot.
 */
export function checkStock(sku: string) {
  return inventory.execute(({ signal }) => inventoryApi.stock(sku, { signal }));
}

/** The same through `wrap`, for a client that takes no signal: the result type gains the fallback's. */
export const checkStockUnsignalled = inventory.wrap((sku: string) => inventoryApi.stock(sku));

// ── compile-time checks: the stacks keep the types of what they wrap ───────────────────
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
export type TypeChecks = [
  Expect<Equal<typeof chargeCard, (orderId: string, cents: number) => Promise<Receipt>>>,
  Expect<Equal<Awaited<ReturnType<typeof checkStock>>, StockLevel | StockUnknown>>,
  Expect<Equal<typeof checkStockUnsignalled, (sku: string) => Promise<StockLevel | StockUnknown>>>,
];

export function typeErrorsTheCompilerCatches(): void {
  // @ts-expect-error: cents is a number, as in paymentGateway.charge
  void chargeCard('order-1', '42.00');
  // @ts-expect-error: the answer may be the fallback's { status: 'unknown' }, which has no `available`
  void checkStock('sku-1').then((stock) => stock.available);
  void checkStock('sku-1').then((stock) => (stock.status === 'unknown' ? 0 : stock.available)); // narrowed first: fine
}

// ── a slow inventory does not slow payments ────────────────────────────────────────────
async function main(): Promise<void> {
  const seen = { bulkheadFull: 0, queueTimeouts: 0, breaker: [inventoryBreaker.state as string] };
  inventoryBulkhead.on('rejected', ({ reason }) => (reason === 'full' ? seen.bulkheadFull++ : seen.queueTimeouts++));
  inventoryBreaker.on('stateChange', ({ to }) => seen.breaker.push(to));

  inventoryApi.slow = true;
  const start = performance.now();
  const timed = <T>(promise: Promise<T>): Promise<{ value: T; ms: number }> =>
    promise.then((value) => ({ value, ms: Math.round(performance.now() - start) }));
  const stockChecks = Array.from({ length: 20 }, (_, i) => timed(checkStock(`sku-${i + 1}`)));
  const charges = Array.from({ length: 5 }, (_, i) => timed(chargeCard(`order-${i + 1}`, 1_000 * (i + 1))));
  console.log('inventory hangs (10 s a call); 20 stock checks and 5 charges sent at once');
  console.log(`  bulkheads right away: inventory ${inventoryBulkhead.active} running + ${inventoryBulkhead.queued} queued, payments ${paymentsBulkhead.active} running`);

  const receipts = await Promise.all(charges);
  const slowestCharge = Math.max(...receipts.map(({ ms }) => ms));
  console.log(`  payments: ${receipts.length} charged (${receipts.map(({ value }) => value.chargeId).join(', ')}), all within ${slowestCharge} ms`);

  const stocks = await Promise.all(stockChecks);
  const unknown = stocks.filter(({ value }) => value.status === 'unknown').length;
  const slowestCheck = Math.max(...stocks.map(({ ms }) => ms));
  console.log(`  inventory: ${unknown} of ${stocks.length} stock checks answered "unknown" by the fallback, all within ${slowestCheck} ms`);
  console.log(`    ${seen.bulkheadFull} rejected at once by the full bulkhead, ${seen.queueTimeouts} after waiting 200 ms in its queue, the rest timed out`);
  console.log(`    inventory breaker: ${seen.breaker.join(' → ')}; payments breaker: ${paymentsBreaker.state}`);
  console.log(`  bulkheads now: inventory ${inventoryBulkhead.active} running, payments ${paymentsBulkhead.active} running`);
}

runMain(import.meta.url, main);
