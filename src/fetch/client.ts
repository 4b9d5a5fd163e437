/**
 * `resilientFetch`: a function with fetch's signature whose calls run through each origin's
 * policies (stacks.ts). One `FetchCall` per call: it reads the request once (method, origin,
 * whether it may be sent again), sends each attempt with the attempt's own signal, classifies
 * each response as it arrives, and cancels the body of every response that is not the answer.
 */
import { refusal, systemClock, type CircuitBreakerGroup, type ExecutionContext, type Listener, type Policy, type Unsubscribe } from 'bulwark';
import { synchronousAnswer } from '../shared/report.js';
import { HttpError } from './error.js';
import { FetchEmitter, type ResilientFetchEvents } from './events.js';
import { discard, hasHeader, initOf, isIdempotent, isReplayable, isRequest, isSafe, originOf, retryAfterMs, type FetchFunction, type FetchResponse, type RequestLike } from './http.js';
import { settingsOf, type ResilientFetchOptions, type Settings } from './options.js';
import { Origins, type OriginStack } from './stacks.js';
import { fileTransient, type CallFacts } from './transient.js';

/**
 * What {@link resilientFetch} returns: a function with the signature of the fetch it runs
 * (`typeof fetch` by default), and a few members to observe it.
 */
export type ResilientFetch<F extends FetchFunction = typeof fetch> = F & {
  /** Subscribes to an event of every origin's calls; returns the function that unsubscribes. */
  on<K extends keyof ResilientFetchEvents>(event: K, listener: Listener<ResilientFetchEvents[K]>): Unsubscribe;
  /** The breakers, one per origin (`undefined` with `breaker: false`): read a state, isolate or reset one. */
  readonly breakers: CircuitBreakerGroup | undefined;
  /**
   * The policies calls to `url`'s origin go through (those of retried requests, with hedging
   * when the client hedges), made if the client holds none: to track or log them yourself.
   */
  policyOf(url: string | URL): Policy;
  /** The origins the client holds policies for now. */
  origins(): string[];
};

/** The client as every call sees it. */
interface Client {
  readonly settings: Settings;
  readonly origins: Origins;
  readonly events: FetchEmitter;
  readonly now: () => number;
}

/** One call: its request, read once, and the responses of its attempts. */
class FetchCall implements CallFacts {
  readonly deadline: number;
  plannedDelay = 0;
  readonly method: string;
  readonly origin: string;
  attempts = 0;
  private readonly client: Client;
  /** What each attempt passes to fetch as its first argument: the URL (a Request is sent from its parts). */
  private readonly target: unknown;
  /** What each attempt passes to fetch as its second argument, before its signal is added. */
  private init: Record<string, unknown> | undefined;
  /** A Request whose body is read once, before the first attempt, so that every attempt can send it. */
  private readonly request: RequestLike | undefined;
  readonly signal: AbortSignal | undefined;
  private settled = false;
  /** The responses of the attempts so far: the first one, then the others. */
  private first: FetchResponse | undefined = undefined;
  private more: FetchResponse[] | undefined = undefined;

  constructor(client: Client, input: unknown, init: Record<string, unknown> | undefined) {
    this.client = client;
    let signal: unknown;
    if (isRequest(input)) {
      this.target = input.url;
      this.init = initOf(input);
      signal = input.signal;
      this.request = input.body === null || input.body === undefined ? undefined : input;
      if (init !== undefined) {
        this.init = { ...this.init, ...init };
        // A body given with the request replaces the request's own.
        if (init['body'] !== undefined) this.request = undefined;
      }
    } else {
      this.target = input;
      this.init = init;
      this.request = undefined;
    }
    // As fetch reads an init: a member set to undefined is one not given; null is a value (no signal, the method "null").
    if (init !== undefined && init['signal'] !== undefined) signal = init['signal'];
    this.signal = (signal ?? undefined) as AbortSignal | undefined;
    const method = this.init?.['method'];
    this.method = method === undefined ? 'GET' : String(method).toUpperCase();
    this.origin = originOf(this.target instanceof URL ? this.target : String(this.target));
    const total = client.settings.totalTimeout;
    // Stryker disable next-line ConditionalExpression: now + Infinity is Infinity; the test only spares reading the clock
    this.deadline = total === Infinity ? Infinity : client.now() + total;
  }

  /** The stack this call goes through: reads may be hedged, requests that can be sent again retried. */
  private stackFor(stack: OriginStack): Policy {
    const settings = this.client.settings;
    const body = this.init?.['body'];
    // Stryker disable next-line ConditionalExpression,LogicalOperator: a call with a Request to read has no body in its init, and isReplayable(undefined) is true: the checks in front of isReplayable only spare calling it
    if (this.request === undefined && body !== undefined && !isReplayable(body)) return stack.once;
    if (!isIdempotent(this.method) && !settings.retryNonIdempotent && !hasHeader(this.init?.['headers'], 'idempotency-key')) return stack.once;
    return stack.hedged !== undefined && isSafe(this.method) ? stack.hedged : stack.retrying;
  }

  async run(): Promise<FetchResponse> {
    const stack = this.client.origins.get(this.origin);
    const policy = this.stackFor(stack);
    if (this.request !== undefined) {
      // Read once, so that every attempt sends the same bytes (a Request's body is a stream).
      if (this.signal?.aborted === true) throw this.signal.reason;
      this.init = { ...this.init, body: await this.request.arrayBuffer() };
    }
    let response: FetchResponse;
    try {
      response = (await policy.execute(this.attempt, this.signal === undefined ? undefined : { signal: this.signal })) as FetchResponse;
    } catch (error) {
      this.settle(undefined);
      if (!(this.signal?.aborted === true && error === this.signal.reason)) this.failed(stack, undefined, error);
      throw error;
    }
    this.settle(response);
    const transient = this.isTransient(response);
    this.answered(stack, response.status, transient);
    if (transient && this.client.settings.throwOnTransient) throw new HttpError(response as Response, this.method, this.origin, this.attempts);
    return response;
  }

  /** One attempt: the request, sent with the attempt's own signal (aborted by the caller, a timeout, or a hedge that lost). */
  private readonly attempt = (ctx: ExecutionContext): Promise<FetchResponse> => {
    this.attempts++;
    const fetch = this.client.settings.fetch ?? (globalThis.fetch as FetchFunction);
    const init = this.init;
    return fetch(this.target, init === undefined ? { signal: ctx.signal } : { ...init, signal: ctx.signal }).then(this.received);
  };

  /** A response arrived: kept to be cancelled unless it is the answer, and filed when transient. */
  private readonly received = (response: FetchResponse): FetchResponse => {
    if (this.settled) {
      // A hedge that lost, or an attempt answered after its call: nobody will read it.
      discard(response);
      return response;
    }
    // Stryker disable next-line ConditionalExpression,EqualityOperator: every response kept in `more` is cancelled by settle() as the first one is: `first` only spares an array
    if (this.first === undefined) this.first = response;
    else (this.more ??= []).push(response);
    let transient: boolean;
    try {
      transient = this.isTransient(response);
    } catch (error) {
      discard(response);
      // A refusal: the predicate is broken, the dependency is not; no retry, no breaker count.
      throw refusal(typeof error === 'object' && error !== null ? error : new TypeError(`resilientFetch transient threw ${String(error)}`));
    }
    if (transient) fileTransient(response, { call: this, retryAfter: retryAfterMs(response, this.client.now()) });
    return response;
  };

  private isTransient(response: FetchResponse): boolean {
    const settings = this.client.settings;
    if (!settings.customTransient) return settings.isTransient(response);
    return synchronousAnswer('resilientFetch transient', settings.isTransient(response)) === true;
  }

  /** The call has its answer (`undefined`: an error): every other response is cancelled. */
  private settle(answer: FetchResponse | undefined): void {
    this.settled = true;
    if (this.first !== undefined && this.first !== answer) discard(this.first);
    if (this.more !== undefined) for (const response of this.more) if (response !== answer) discard(response);
    this.first = undefined;
    this.more = undefined;
  }

  private answered(stack: OriginStack, status: number, transient: boolean): void {
    const events = stack.policy.events;
    const all = this.client.events;
    // Stryker disable next-line ConditionalExpression: emit with no listener returns at once; the guard only spares building the payload
    if (events.has('response') || all.has('response')) {
      const payload = { method: this.method, origin: this.origin, status, attempts: this.attempts };
      events.emit('response', payload);
      all.emit('response', payload);
    }
    if (transient) this.failed(stack, status, undefined);
  }

  private failed(stack: OriginStack, status: number | undefined, error: unknown): void {
    const events = stack.policy.events;
    const all = this.client.events;
    // Stryker disable next-line ConditionalExpression: emit with no listener returns at once; the guard only spares building the payload
    if (!events.has('requestFailed') && !all.has('requestFailed')) return;
    const payload = { method: this.method, origin: this.origin, attempts: this.attempts, status, error };
    events.emit('requestFailed', payload);
    all.emit('requestFailed', payload);
  }
}

/**
 * Returns a function with `fetch`'s signature and `Response` results whose calls run through a
 * standard pipeline, per origin, outermost first: a total timeout (30 s), a retry of transient
 * failures (3 retries, exponential backoff with jitter from 2 s, honouring `Retry-After`), a
 * circuit breaker (open at 10 % failures over 30 s with at least 100 calls, for 5 s), and an
 * attempt timeout (10 s); with an optional bulkhead, rate limit, and hedging of reads.
 *
 * A response is always returned, never thrown (unless `throwOnTransient`); after the last
 * retry the last response is returned. Only idempotent methods (GET, HEAD, OPTIONS, TRACE,
 * PUT, DELETE) are retried, and POST or PATCH with an `Idempotency-Key` header; only reads are
 * hedged. A stream body is sent once and never retried. The body of every response the caller
 * does not get (a retried 503, a hedge that lost) is cancelled, so its connection is freed.
 * The caller's signal aborts the call at once, whatever it is doing.
 *
 * @typeParam F - the fetch in use (`options.fetch`, the global `fetch` by default), whose
 * signature and response type the returned function keeps.
 * @example
 * ```ts
 * const billing = resilientFetch({ name: 'billing', attemptTimeout: 2_000, hedge: { delay: 300 } });
 * async function invoice(id: string, signal: AbortSignal): Promise<Invoice | undefined> {
 *   const response = await billing(`https://billing.internal/invoices/${id}`, { signal });
 *   return response.ok ? ((await response.json()) as Invoice) : undefined;
 * }
 * ```
 */
export function resilientFetch<F extends FetchFunction = typeof fetch>(options?: ResilientFetchOptions<F>): ResilientFetch<F> {
  const settings = settingsOf(options as ResilientFetchOptions<FetchFunction> | undefined);
  const clock = settings.clock ?? systemClock;
  const client: Client = { settings, origins: new Origins(settings), events: new FetchEmitter(), now: () => clock.now() };
  const resilient = (input: unknown, init?: unknown): Promise<FetchResponse> => {
    let call: FetchCall;
    try {
      if (init !== undefined && init !== null && typeof init !== 'object') throw new TypeError(`fetch(input, init): init must be an object, got ${typeof init}`);
      call = new FetchCall(client, input, (init ?? undefined) as Record<string, unknown> | undefined);
    } catch (error) {
      return Promise.reject(error);
    }
    return call.run();
  };
  Object.defineProperties(resilient, {
    on: { value: (event: keyof ResilientFetchEvents, listener: Listener<any>) => client.events.on(event, listener) },
    breakers: { value: settings.breakers },
    policyOf: { value: (url: string | URL) => client.origins.get(originOf(url)).hedged ?? client.origins.get(originOf(url)).retrying },
    origins: { value: () => [...client.origins.keys()] },
  });
  return resilient as unknown as ResilientFetch<F>;
}
