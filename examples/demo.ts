/**
 * `npm run demo`: bulwark against a real, deliberately flaky HTTP server.
 *
 * It starts a price service on 127.0.0.1 (random port) that follows a script — healthy,
 * flaky (500s, dropped connections), slow (answers after the timeout), a full outage, back up,
 * then busy — and calls it through one stack:
 *
 *   compose(withFallback, CircuitBreaker, retryWithBackoff, withTimeout, Bulkhead)
 *
 * Each line says what one policy did for one call, learnt from the policies' events
 * (`on(...)`). AsyncLocalStorage tells which call an event belongs to: it follows a call
 * through every layer, the bulkhead queue included, so concurrent calls do not mix.
 * A summary ends the run; the process then exits 0 by itself, with nothing left running.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Bulkhead,
  CircuitBreaker,
  compose,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isTimeoutError,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type CircuitState,
  type ExecutionContext,
} from 'bulwark';
import { HttpError } from './fetch.js';

// Small numbers, so the whole story fits in a few seconds.
const settings = {
  timeout: 150, // per attempt; the server's slow answers take 400 ms
  maxRetries: 2,
  baseDelay: 50,
  maxDelay: 400,
  failureThreshold: 3,
  recoveryTimeout: 1_500,
  maxConcurrent: 2,
  maxQueue: 2,
} as const;

// ── output ──────────────────────────────────────────────────────────────────────────────
const useColour = process.stdout.isTTY === true && (process.env.NO_COLOR ?? '') === '';
const paint =
  (code: string) =>
  (text: string): string =>
    useColour ? `\x1b[${code}m${text}\x1b[0m` : text;
const bold = paint('1');
const dim = paint('2');
const red = paint('31');
const green = paint('32');
const yellow = paint('33');
const blue = paint('34');
const magenta = paint('35');
const cyan = paint('36');

type Speaker = 'request' | 'retry' | 'timeout' | 'breaker' | 'bulkhead' | 'fallback' | 'result';
const speakerColour: Record<Speaker, (text: string) => string> = {
  request: (text) => text,
  retry: yellow,
  timeout: magenta,
  breaker: red,
  bulkhead: blue,
  fallback: cyan,
  result: bold,
};

const demoStart = performance.now();
const ms = (value: number): string => `${Math.round(value).toLocaleString('en-US')} ms`;

/** One line: time since start, the call it belongs to, who speaks, what happened. */
function say(speaker: Speaker, message: string, record: CallRecord | undefined = current.getStore()): void {
  const time = `${((performance.now() - demoStart) / 1000).toFixed(2)}s`.padStart(7);
  const call = record === undefined ? '   ' : `#${String(record.id).padStart(2, '0')}`;
  console.log(`${dim(time)}  ${call}  ${speakerColour[speaker](speaker.padEnd(8))}  ${message}`);
}

function heading(text: string): void {
  console.log(`\n${bold(`── ${text} ${'─'.repeat(Math.max(3, 86 - text.length))}`)}`);
}

function narrate(text: string): void {
  console.log(`${' '.repeat(15)}${dim(text)}`);
}

function describe(error: unknown): string {
  if (error instanceof HttpError) return `HTTP ${error.status}`;
  if (isTimeoutError(error)) return `timeout after ${ms(error.timeout)}`;
  if (isCircuitOpenError(error)) return `circuit ${error.state}`;
  if (isBulkheadRejectedError(error)) return error.reason === 'full' ? 'bulkhead full' : 'bulkhead queue timeout';
  if (error instanceof TypeError) {
    // fetch reports every network failure as TypeError('fetch failed'); the cause says which.
    const cause = error.cause instanceof Error ? error.cause.message : error.message;
    return `network error: ${cause}`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

// ── the flaky server ────────────────────────────────────────────────────────────────────
/** What the server does with one request. */
type Behaviour = 'ok' | 'busy' | 'slow' | 'error' | 'down' | 'reset';

interface Quote {
  readonly sku: string;
  readonly price: number;
}

/** A price that looks random but is the same for a sku on every run (FNV-1a hash of the sku). */
const priceOf = (sku: string): number => 5 + ([...sku].reduce((hash, char) => Math.imul(hash ^ char.charCodeAt(0), 16_777_619) >>> 0, 2_166_136_261) % 9_500) / 100;

async function startFlakyServer() {
  let plan: readonly Behaviour[] = ['ok'];
  let served = 0;
  const stats = { requests: 0, misbehaved: 0 };
  const server = createServer((request, response) => {
    const behaviour = plan[served++ % plan.length] ?? 'ok';
    stats.requests++;
    if (behaviour !== 'ok' && behaviour !== 'busy') stats.misbehaved++;
    const sku = decodeURIComponent((request.url ?? '').split('/').pop() ?? '');
    const answer = (): void => {
      const quote: Quote = { sku, price: priceOf(sku) };
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(quote));
    };
    switch (behaviour) {
      case 'ok':
        return answer();
      case 'error':
        return void response.writeHead(500).end();
      case 'down':
        return void response.writeHead(503).end();
      case 'reset':
        return void request.socket.destroy();
      case 'busy':
      case 'slow': {
        const timer = setTimeout(answer, behaviour === 'slow' ? 400 : 50);
        response.on('close', () => clearTimeout(timer)); // the client gave up: no timer left behind
        return;
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    /** From now on, request n gets `behaviours[n % length]`. */
    follow(behaviours: readonly Behaviour[]): void {
      plan = behaviours;
      served = 0;
    },
    close(): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return closed;
    },
  };
}

// ── the stack ───────────────────────────────────────────────────────────────────────────
const UNAVAILABLE = { price: null, note: 'price unavailable' } as const;

const fallback = withFallback(UNAVAILABLE);
const breaker = new CircuitBreaker({
  failureThreshold: settings.failureThreshold,
  recoveryTimeout: settings.recoveryTimeout,
  // A full bulkhead is our own back-pressure, not the server failing: do not count it.
  isFailure: (error) => !isBulkheadRejectedError(error),
});
const retry = retryWithBackoff({ maxRetries: settings.maxRetries, baseDelay: settings.baseDelay, maxDelay: settings.maxDelay });
const timeout = withTimeout(settings.timeout);
const bulkhead = new Bulkhead({ maxConcurrent: settings.maxConcurrent, maxQueue: settings.maxQueue });
const prices = compose(fallback, breaker, retry, timeout, bulkhead);

// ── what happened to each call ──────────────────────────────────────────────────────────
interface CallRecord {
  readonly id: number;
  readonly sku: string;
  readonly started: number;
  attempt: number;
  retries: number;
  /** The error the fallback replaced, if it answered. */
  replaced: { readonly error: unknown } | undefined;
  outcome: 'first try' | 'after retry' | 'fallback' | 'unexpected' | undefined;
}

const current = new AsyncLocalStorage<CallRecord>();
const records: CallRecord[] = [];
const totals = { retries: 0, timeouts: 0 };
const breakerPath: CircuitState[] = [breaker.state];

breaker.on('stateChange', ({ from, to }) => {
  breakerPath.push(to);
  const why =
    to === 'open'
      ? from === 'half-open'
        ? `the trial failed; calls fail fast for another ${ms(settings.recoveryTimeout)}`
        : `after ${settings.failureThreshold} failed calls in a row; calls fail fast for ${ms(settings.recoveryTimeout)}`
      : to === 'half-open'
        ? `${ms(settings.recoveryTimeout)} have passed; this call is the trial`
        : to === 'closed'
          ? 'the trial succeeded'
          : '';
  say('breaker', `${from} → ${to === 'open' ? 'OPEN' : to}: ${why}`);
});
breaker.on('failure', ({ state, consecutiveFailures }) => {
  if (state === 'closed') say('breaker', `counts failure ${consecutiveFailures} of ${settings.failureThreshold}`);
});
breaker.on('rejected', ({ error }) => {
  say(
    'breaker',
    error.state === 'open'
      ? `open: rejected without calling the server (next trial in ${ms(error.retryAfter)})`
      : `${error.state}: its one trial call is running, so this one is rejected at once`,
  );
});
retry.on('retry', ({ error, attempt, delay }) => {
  totals.retries++;
  const record = current.getStore();
  if (record !== undefined) record.retries++;
  say('retry', `attempt ${attempt} failed (${describe(error)}): retry ${attempt} in ${ms(delay)}`);
});
retry.on('giveUp', ({ error, attempts }) => {
  say(
    'retry',
    attempts > settings.maxRetries
      ? `gives up after ${attempts} attempts (${describe(error)})`
      : `${describe(error)}: not retried, a retry would only add load`,
  );
});
timeout.on('timeout', ({ timeout: limit }) => {
  totals.timeouts++;
  say('timeout', `attempt ${current.getStore()?.attempt ?? '?'} had no answer within ${ms(limit)}: aborted (its socket closes)`);
});
bulkhead.on('rejected', ({ reason }) => {
  say('bulkhead', reason === 'full' ? `full (${bulkhead.active} running, ${bulkhead.queued} queued): rejected at once` : 'waited too long for a slot: rejected');
});
fallback.on('fallback', ({ error }) => {
  const record = current.getStore();
  if (record !== undefined) record.replaced = { error };
  say('fallback', `answers "${UNAVAILABLE.note}" instead of the error (${describe(error)})`);
});

/** The function the stack runs: one attempt, one HTTP request. */
async function fetchQuote(baseUrl: string, ctx: ExecutionContext, record: CallRecord): Promise<Quote> {
  record.attempt = ctx.attempt;
  const started = performance.now();
  // Only the first attempt starts with the call, so only its wait is the bulkhead queue's.
  const queued = ctx.attempt === 1 && started - record.started > 15 ? ` after ${ms(started - record.started)} in the bulkhead queue` : '';
  const took = (): string => ms(performance.now() - started);
  try {
    const response = await fetch(`${baseUrl}/price/${encodeURIComponent(record.sku)}`, { signal: ctx.signal });
    if (!response.ok) {
      await response.body?.cancel();
      throw new HttpError(response.status, response.statusText, response.url);
    }
    const quote = (await response.json()) as Quote;
    say('request', `attempt ${ctx.attempt}${queued}: 200 OK in ${took()}`);
    return quote;
  } catch (error) {
    // When the timeout aborted the request, its own line already said so.
    if (!ctx.signal.aborted) say('request', `attempt ${ctx.attempt}${queued}: ${describe(error)} in ${took()}`);
    throw error;
  }
}

let nextId = 1;

/** One call through the stack, ending with its result line. Never rejects. */
async function getPrice(baseUrl: string): Promise<void> {
  const id = nextId++;
  const record: CallRecord = { id, sku: `sku-${id}`, started: performance.now(), attempt: 1, retries: 0, replaced: undefined, outcome: undefined };
  records.push(record);
  await current.run(record, async () => {
    try {
      const result = await prices.execute((ctx) => fetchQuote(baseUrl, ctx, record));
      const took = ms(performance.now() - record.started);
      if (result.price === null) {
        record.outcome = 'fallback';
        say('result', red(`${record.sku}: ${result.note} (fallback, ${took})`));
      } else {
        record.outcome = record.retries === 0 ? 'first try' : 'after retry';
        const how = record.retries === 0 ? 'first try' : `after ${record.retries} ${record.retries === 1 ? 'retry' : 'retries'}`;
        say('result', green(`${record.sku} costs ${result.price.toFixed(2)} (ok ${how}, ${took})`));
      }
    } catch (error) {
      // Cannot happen with a fallback outermost that handles every error; said, not thrown.
      record.outcome = 'unexpected';
      say('result', red(`unexpected rejection: ${describe(error)}`));
    }
  });
}

// ── the script ──────────────────────────────────────────────────────────────────────────
async function main(): Promise<void> {
  const server = await startFlakyServer();
  console.log(bold(`bulwark demo: a flaky price service on ${server.url}, called through`));
  console.log('  compose(withFallback, CircuitBreaker, retryWithBackoff, withTimeout, Bulkhead)');
  console.log(
    dim(
      `  fallback "${UNAVAILABLE.note}" · breaker opens after ${settings.failureThreshold} failed calls, trial after ${ms(settings.recoveryTimeout)}\n` +
        `  up to ${settings.maxRetries} retries, ${settings.baseDelay}–${settings.maxDelay} ms backoff with jitter · timeout ${ms(settings.timeout)} per attempt · ` +
        `bulkhead ${settings.maxConcurrent} running + ${settings.maxQueue} queued`,
    ),
  );
  console.log(dim('  columns: seconds since start, call number, who acted (the request itself or a policy), what happened'));

  try {
    heading('1. healthy: every request answers at once');
    server.follow(['ok']);
    await getPrice(server.url);
    await getPrice(server.url);

    heading('2. flaky: every other request fails (a 500, a dropped connection)');
    server.follow(['error', 'ok', 'reset', 'ok']);
    await getPrice(server.url);
    await getPrice(server.url);

    heading(`3. slow: some answers take 400 ms, past the ${ms(settings.timeout)} timeout`);
    server.follow(['slow', 'ok', 'slow', 'slow', 'ok']);
    await getPrice(server.url);
    await getPrice(server.url);

    heading('4. outage: every request gets a 503');
    server.follow(['down']);
    for (let i = 0; i < settings.failureThreshold + 2; i++) await getPrice(server.url);
    narrate(`… ${ms(settings.recoveryTimeout)} pass (the breaker's recoveryTimeout); the server is still down`);
    await sleep(settings.recoveryTimeout + 20);
    await getPrice(server.url);
    narrate(`… another ${ms(settings.recoveryTimeout)} pass; meanwhile the server comes back`);
    await sleep(settings.recoveryTimeout + 20);

    heading('5. recovery: the server answers again; three calls arrive together');
    server.follow(['ok']);
    await Promise.all([getPrice(server.url), getPrice(server.url), getPrice(server.url)]);
    await getPrice(server.url);

    heading(`6. busy: six calls at once, each answer takes 50 ms; the bulkhead runs ${settings.maxConcurrent}, queues ${settings.maxQueue}`);
    server.follow(['busy']);
    const burst = Array.from({ length: 6 }, () => getPrice(server.url));
    narrate(`right after the six calls started: ${bulkhead.active} running, ${bulkhead.queued} queued in the bulkhead`);
    await Promise.all(burst);
  } finally {
    await server.close();
  }

  summarise(server.stats);
}

function summarise(server: { readonly requests: number; readonly misbehaved: number }): void {
  const count = (predicate: (record: CallRecord) => boolean): number => records.filter(predicate).length;
  const fellBack = (test: (error: unknown) => boolean) => (record: CallRecord) => record.replaced !== undefined && test(record.replaced.error);
  const rows: [string, string | number][] = [
    ['calls', records.length],
    ['ok on the first try', count((record) => record.outcome === 'first try')],
    ['ok after retry', count((record) => record.outcome === 'after retry')],
    ['fallbacks', count((record) => record.outcome === 'fallback')],
    ['  rejected by the breaker', count(fellBack(isCircuitOpenError))],
    ['  rejected by the bulkhead', count(fellBack(isBulkheadRejectedError))],
    ['  retries used up', count(fellBack((error) => !isCircuitOpenError(error) && !isBulkheadRejectedError(error)))],
    ['timeouts', totals.timeouts],
    ['retries', totals.retries],
    ['server requests', `${server.requests} (${server.misbehaved} of them failed or were too slow)`],
    ['breaker', breakerPath.join(' → ')],
    ['left in the bulkhead', `${bulkhead.active} running, ${bulkhead.queued} queued`],
  ];
  const unexpected = count((record) => record.outcome === 'unexpected');
  if (unexpected > 0) rows.push(['unexpected rejections', unexpected]);

  heading('summary');
  const width = Math.max(...rows.map(([label]) => label.length));
  for (const [label, value] of rows) {
    console.log(`  ${label.padEnd(width)}  ${value}`);
  }
  if (unexpected > 0) process.exitCode = 1;
}

// If something ever kept the process alive, say so instead of hanging; unref'd, it never
// delays a normal exit.
setTimeout(() => {
  console.error('demo: still running after 20 s: something kept the process alive');
  process.exit(1);
}, 20_000).unref();

main().catch((error: unknown) => {
  console.error('demo failed:', error);
  process.exitCode = 1;
});
