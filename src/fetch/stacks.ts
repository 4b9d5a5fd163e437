/**
 * The policies of each origin a client calls, composed once and kept while the origin is:
 * bounded with the breaker group (an origin is forgotten with its breaker, on the group's
 * `evicted`), or by `maxOrigins` alone without breakers. Each origin's policies are its own,
 * named `<name>:<origin>`, so metrics have one series per origin and a bounded set of them.
 */
import {
  Bulkhead,
  LayerPolicy,
  RateLimiter,
  compose,
  hedge,
  retryWithBackoff,
  systemClock,
  withTimeout,
  type BulkheadOptions,
  type CircuitBreaker,
  type Clock,
  type CounterDescription,
  type LogDescription,
  type Outcome,
  type Policy,
  type PolicyDescription,
  type RateLimiterOptions,
  type RetryPolicy,
} from 'bulwark';
import { reportCallbackError } from '../shared/report.js';
import { describeError } from '../shared/show.js';
import { FetchEmitter, type ResilientFetchEvents } from './events.js';
import { discard, type FetchResponse } from './http.js';
import type { Settings } from './options.js';
import { transientOf } from './transient.js';

/**
 * The outermost policy of an origin's stack: a pass-through that names the origin's calls in
 * metrics (calls, latency, failures) and carries the client's events for that origin, which
 * `logPolicyEvents` writes with the method, origin and status.
 */
export class FetchOriginPolicy extends LayerPolicy<void> {
  /** `<client name>:<origin>`. */
  readonly name: string;
  readonly origin: string;
  /** The events of this origin's calls, emitted by the client. */
  readonly events: FetchEmitter = new FetchEmitter();

  constructor(name: string, origin: string) {
    super();
    this.name = name;
    this.origin = origin;
  }

  protected describe(): PolicyDescription {
    return {
      kind: 'fetch',
      label: 'fetch',
      name: this.name,
      counters: FETCH_COUNTERS,
      logs: FETCH_LOGS,
      on: (event, listener) => this.events.on(event as keyof ResilientFetchEvents, listener),
    };
  }
}

const FETCH_COUNTERS: readonly CounterDescription[] = [
  {
    field: 'requestsFailed',
    event: 'requestFailed',
    unit: '{request}',
    description: 'Calls through a resilient fetch that ended with a transient status or an error (a caller\'s abort aside).',
  },
];

const attemptsText = (attempts: number): string => `${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}`;

const FETCH_LOGS: readonly LogDescription[] = [
  {
    event: 'requestFailed',
    level: 'warn',
    perCall: true,
    plural: 'failed requests',
    message: ({ method, origin, attempts, status, error }: ResilientFetchEvents['requestFailed'], label: string) =>
      status !== undefined
        ? `${label}: ${method} ${origin} answered ${status} after ${attemptsText(attempts)}`
        : `${label}: ${method} ${origin} failed after ${attemptsText(attempts)}: ${describeError(error).message}`,
    fields: ({ method, origin, attempts, status, error }: ResilientFetchEvents['requestFailed']) =>
      status !== undefined ? { method, origin, status, attempts } : { method, origin, attempts, error: describeError(error) },
  },
  {
    event: 'response',
    level: 'off',
    perCall: true,
    plural: 'responses',
    message: ({ method, origin, status, attempts }: ResilientFetchEvents['response'], label: string) => `${label}: ${method} ${origin} answered ${status} (${attemptsText(attempts)})`,
    fields: ({ method, origin, status, attempts }: ResilientFetchEvents['response']) => ({ method, origin, status, attempts }),
  },
];

/** The policies of one origin, and the stacks calls go through. */
export interface OriginStack {
  readonly origin: string;
  readonly policy: FetchOriginPolicy;
  readonly breaker: CircuitBreaker | undefined;
  /** Reads, with hedging (when the client hedges). */
  readonly hedged: Policy | undefined;
  /** Requests that may be sent again: retried. */
  readonly retrying: Policy;
  /** Requests sent once: no retry, no hedge (a POST without an idempotency key, a stream body). */
  readonly once: Policy;
  untrack: (() => void) | undefined;
}

/** Composes the policies of `origin`, outermost first: total timeout → bulkhead → retry → hedge → rate limit → breaker → attempt timeout. */
function buildStack(settings: Settings, origin: string, breaker: CircuitBreaker | undefined): OriginStack {
  const key = `${settings.name}:${origin}`;
  const clock = settings.clock;
  const timed = clock === undefined ? {} : { clock };
  const policy = new FetchOriginPolicy(key, origin);
  const total = settings.totalTimeout === Infinity ? undefined : withTimeout(settings.totalTimeout, { name: `${key}:total`, ...timed });
  const attempt = settings.attemptTimeout === Infinity ? undefined : withTimeout(settings.attemptTimeout, { name: `${key}:attempt`, ...timed });
  const bulkhead = settings.bulkhead === undefined ? undefined : new Bulkhead({ ...(settings.bulkhead as BulkheadOptions), ...timed });
  const limiter = settings.rateLimit === undefined ? undefined : new RateLimiter({ ...(settings.rateLimit as RateLimiterOptions), ...timed });
  const retry = settings.retry === undefined ? undefined : originRetry(settings, clock ?? systemClock);
  const hedging = settings.hedge === undefined ? undefined : hedge({ ...settings.hedge, hedgeOnResult: hedgeOnResult, ...timed });
  const inner = [limiter, breaker, attempt];
  const once = stack([policy, total, bulkhead, ...inner]);
  // Stryker disable next-line ConditionalExpression: without a retry, stack() drops the undefined member: a second composition of the policies of `once`
  const retrying = retry === undefined ? once : stack([policy, total, bulkhead, retry, ...inner]);
  // Stryker disable next-line ConditionalExpression: without hedging, the same policies as `retrying`, tracked as the same members
  const hedged = hedging === undefined ? undefined : stack([policy, total, bulkhead, retry, hedging, ...inner]);
  const built: OriginStack = { origin, policy, breaker, hedged, retrying, once, untrack: undefined };
  if (settings.metrics !== undefined) {
    try {
      built.untrack = settings.metrics.track(hedged ?? retrying, { name: key });
    } catch (error) {
      // Another client of the same name in this registry: its calls go on, untracked.
      reportCallbackError(`tracking the policies of ${JSON.stringify(key)}`, error);
    }
  }
  return built;
}

function stack(members: readonly (Policy | undefined)[]): Policy {
  return compose(...members.filter((member): member is Policy => member !== undefined));
}

/**
 * The retry of one origin. A transient response is retried when a retry is left and the wait
 * it asks for (its `Retry-After`, at least the backoff) fits: within `maxRetryAfter`, and
 * before the call's total timeout; otherwise it is returned at once. The decision is taken in
 * `retryOnResult`, which knows the call's deadline through the response; the `delay` hook then
 * gives the wait decided there, and cancels the body of the response left behind.
 */
function originRetry(settings: Settings, clock: Clock): RetryPolicy {
  const maxRetryAfter = settings.maxRetryAfter;
  const retry: RetryPolicy = retryWithBackoff({
    ...settings.retry,
    ...(settings.clock === undefined ? {} : { clock: settings.clock }),
    retryOnResult: (value, attempt) => {
      const transient = transientOf(value);
      if (transient === undefined) return false;
      const asked = transient.retryAfter ?? 0;
      if (asked > maxRetryAfter) return false;
      const call = transient.call;
      const wait = Math.max(asked, retry.delay(attempt, call.plannedDelay > 0 ? call.plannedDelay : undefined));
      if (clock.now() + wait >= call.deadline) return false;
      call.plannedDelay = wait;
      return true;
    },
    delay: (_attempt: number, outcome: Outcome, _backoff: number) => {
      if (!outcome.ok) return undefined;
      // Asked once the retry is decided: this response will never be anyone's answer.
      discard(outcome.value as FetchResponse);
      const transient = transientOf(outcome.value);
      return transient === undefined ? undefined : transient.call.plannedDelay;
    },
  });
  return retry;
}

/** A transient response starts the next hedge at once, unless it asks to wait (Retry-After): then it is the answer, for the retry to honour. */
function hedgeOnResult(value: unknown): boolean {
  const transient = transientOf(value);
  return transient !== undefined && transient.retryAfter === undefined;
}

/** The stacks of the origins a client calls. */
export class Origins {
  private readonly settings: Settings;
  /** Least recently used first (when there is no breaker group to decide). */
  private readonly stacks = new Map<string, OriginStack>();

  constructor(settings: Settings) {
    this.settings = settings;
    settings.breakers?.on('evicted', ({ key }) => this.drop(key));
  }

  /** The stack of `origin`, composed the first time (or again once its breaker was forgotten). */
  get(origin: string): OriginStack {
    const breakers = this.settings.breakers;
    const known = this.stacks.get(origin);
    if (breakers !== undefined) {
      // Counts as a use of the origin, so the group forgets the least recently used ones.
      const breaker = breakers.get(origin);
      if (known !== undefined && known.breaker === breaker) return known;
      // Stryker disable next-line ConditionalExpression: dropping an origin the client does not hold returns at once
      if (known !== undefined) this.drop(origin);
      const built = buildStack(this.settings, origin, breaker);
      this.stacks.set(origin, built);
      return built;
    }
    if (known !== undefined) {
      this.stacks.delete(origin);
      this.stacks.set(origin, known);
      return known;
    }
    const built = buildStack(this.settings, origin, undefined);
    this.stacks.set(origin, built);
    if (this.stacks.size > this.settings.maxOrigins) this.drop(this.stacks.keys().next().value as string);
    return built;
  }

  /** The stack of `origin` if the client holds one. */
  peek(origin: string): OriginStack | undefined {
    return this.stacks.get(origin);
  }

  /** How many origins the client holds. */
  get size(): number {
    return this.stacks.size;
  }

  /** The origins the client holds. */
  keys(): IterableIterator<string> {
    return this.stacks.keys();
  }

  private drop(origin: string): void {
    const stack = this.stacks.get(origin);
    if (stack === undefined) return;
    this.stacks.delete(origin);
    stack.untrack?.();
  }
}
