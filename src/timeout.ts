import type { AbortScope, LayerCall, LogDescription, PolicyDescription } from './engine/contract.js';
import { LayerPolicy } from './engine/policy.js';
import { TimeoutError } from './errors.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { TIMEOUT_COUNTERS } from './shared/metric-catalog.js';
import { systemClock, type Clock } from './shared/clock.js';
import { List, type ListNode } from './shared/list.js';
import * as validate from './shared/validate.js';

/** Options of {@link withTimeout}. */
export interface TimeoutOptions {
  /** A name for logs and metrics. */
  name?: string | undefined;
  /**
   * The source of time.
   * @default systemClock
   */
  clock?: Clock | undefined;
}

/** Events of a {@link TimeoutPolicy}. */
export interface TimeoutEvents {
  /** The deadline of `timeout` ms passed; the call rejects with `error`. */
  timeout: { readonly error: TimeoutError; readonly timeout: number };
}

/**
 * One call under a timeout: a node of the policy's deadline list, which is kept in start order
 * so its head always expires first.
 */
interface Deadline extends ListNode<Deadline> {
  /** What the timeout aborts when it expires. */
  readonly scope: AbortScope;
  /** Clock time at which it expires; NaN until stamped (see {@link TimeoutPolicy}). */
  at: number;
  /** Set when it expired: the call fails with it, whatever the layers inside answered. */
  expired: TimeoutError | undefined;
  linked: boolean;
  /** Its own timer, with an injected clock. */
  timer: unknown;
  previous: Deadline | undefined;
  next: Deadline | undefined;
  /** The next deadline waiting for its check (see {@link TimeoutPolicy}). */
  nextToCheck: Deadline | undefined;
}

const OPTION_KEYS: readonly (keyof TimeoutOptions)[] = ['name', 'clock'];

/** The policy {@link withTimeout} builds. */
// The token's type stays out of the declarations (`unknown`): it is the timeout's business alone.
export class TimeoutPolicy extends LayerPolicy<unknown> {
  /** The deadline in ms (`Infinity`: none). */
  readonly timeout: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly clock: Clock;
  private readonly events = new Emitter<TimeoutEvents>(['timeout']);
  /**
   * The calls under this policy that have not settled, oldest first. One timer serves them
   * all: it is armed for the head, and re-armed for the next head when it fires.
   */
  private readonly pending = new List<Deadline>();
  private timer: unknown = undefined;
  /** Deadlines waiting for their check, oldest first. */
  private firstToCheck: Deadline | undefined = undefined;
  private lastToCheck: Deadline | undefined = undefined;
  /**
   * True on the system clock: deadlines share the timer above. An injected clock (a test's)
   * gets one timer per call, armed at once, so it sees exactly the timers of the calls pending.
   */
  private readonly shared: boolean;

  constructor(timeout: number, options?: TimeoutOptions) {
    super();
    const opts = validate.options('withTimeout', options, OPTION_KEYS);
    this.timeout = validate.duration('withTimeout(ms): ms', timeout, true);
    this.clock = opts.clock === undefined ? systemClock : validate.clock('withTimeout clock', opts.clock);
    this.name = opts.name === undefined ? undefined : validate.text('withTimeout name', opts.name);
    this.shared = opts.clock === undefined;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof TimeoutEvents>(event: K, listener: Listener<TimeoutEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** A timeout of `Infinity` never aborts anything: calls through it need no race with their function. */
  protected override get abortsWork(): boolean {
    // Stryker disable next-line ConditionalExpression: a timeout of Infinity opens no abort scope; `true` would only make its calls race their function, at a cost.
    return this.timeout !== Infinity;
  }

  protected override enter(call: LayerCall): unknown {
    if (this.timeout === Infinity) return undefined;
    // Stryker disable next-line BooleanLiteral: an injected clock's deadline is never in the list, and List.remove() leaves a node it does not hold alone; the system clock's is linked just below.
    const deadline: Deadline = { scope: call.openAbortScope(), at: Number.NaN, expired: undefined, linked: false, timer: undefined, previous: undefined, next: undefined, nextToCheck: undefined };
    if (!this.shared) {
      deadline.timer = this.clock.setTimeout(() => this.expireOne(deadline), this.timeout);
      return deadline;
    }
    deadline.linked = true;
    this.pending.push(deadline);
    // One check per call, queued in the order the calls entered: the call hands over the
    // policy's one check function, so no closure is made per call.
    if (this.lastToCheck === undefined) this.firstToCheck = deadline;
    else this.lastToCheck.nextToCheck = deadline;
    this.lastToCheck = deadline;
    call.afterStart(this.checkNext);
    return deadline;
  }

  protected override onValue(token: unknown, value: unknown): unknown {
    if (token === undefined) return value;
    const expired = this.settle(token as Deadline);
    if (expired !== undefined) throw expired;
    return value;
  }

  protected override onError(token: unknown, error: unknown): never {
    if (token === undefined) throw error;
    throw this.settle(token as Deadline) ?? error;
  }

  protected describe(): PolicyDescription {
    return { kind: 'timeout', name: this.name, counters: TIMEOUT_COUNTERS, logs: TIMEOUT_LOGS, on: (event, listener) => this.on(event as keyof TimeoutEvents, listener) };
  }

  /** Takes a settled call off the list; returns its TimeoutError if it had expired. */
  private settle(deadline: Deadline): TimeoutError | undefined {
    if (deadline.timer !== undefined) {
      this.clock.clearTimeout(deadline.timer);
      deadline.timer = undefined;
      return deadline.expired;
    }
    // Stryker disable next-line ConditionalExpression: List.remove() of a node the list does not hold changes nothing.
    if (deadline.linked) this.unlink(deadline);
    if (this.pending.head === undefined && this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    return deadline.expired;
  }

  /*
   * Most calls under a timeout settle within the turn of the event loop that started them (a
   * cache hit, an answer already buffered): for those, reading the clock and arming a timer
   * would be pure cost (a timer costs about ten awaits). So a new call is stamped with its
   * expiry, and the timer armed, in a microtask queued once the call has started its work:
   * after the reaction to a function that has already settled. Until then no timer could fire
   * anyway (the turn is still running), so no deadline is missed; a call stamped late by
   * synchronous work in that same turn expires late by as long, never early.
   */
  private readonly checkNext = (): void => {
    const deadline = this.firstToCheck;
    if (deadline === undefined) return;
    this.firstToCheck = deadline.nextToCheck;
    if (this.firstToCheck === undefined) this.lastToCheck = undefined;
    deadline.nextToCheck = undefined;
    this.check(deadline);
  };

  /**
   * Stamps `deadline` and arms the timer, if the call is still pending. Calls are checked in
   * the order they entered, and that is the order of the deadline list: every call ahead of
   * this one is stamped already, so the head is stamped and the timer, if none is armed, is
   * armed for it.
   */
  private check(deadline: Deadline): void {
    if (!deadline.linked || !Number.isNaN(deadline.at)) return;
    const now = this.clock.now();
    deadline.at = now + this.timeout;
    if (this.timer === undefined) this.arm((this.pending.head as Deadline).at - now);
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(this.expire, Math.max(0, ms));
  }

  /** The timer fired: aborts every call whose deadline has come, and re-arms for the next one. */
  private readonly expire = (): void => {
    this.timer = undefined;
    const now = this.clock.now();
    for (let head = this.pending.head; head !== undefined && head.at <= now; head = this.pending.head) {
      this.unlink(head);
      this.abortExpired(head);
    }
    const next = this.pending.head;
    if (next !== undefined && this.timer === undefined && !Number.isNaN(next.at)) this.arm(next.at - now);
  };

  /** An injected clock's timer of one call fired. */
  private expireOne(deadline: Deadline): void {
    deadline.timer = undefined;
    this.abortExpired(deadline);
  }

  private abortExpired(deadline: Deadline): void {
    const error = new TimeoutError(this.timeout);
    deadline.expired = error;
    // Stryker disable next-line ConditionalExpression: emit() with no listener returns at once; the guard only spares building the payload.
    if (this.events.has('timeout')) this.events.emit('timeout', { error, timeout: this.timeout });
    deadline.scope.abort(error);
  }

  private unlink(deadline: Deadline): void {
    deadline.linked = false;
    this.pending.remove(deadline);
  }

}

const TIMEOUT_LOGS: readonly LogDescription[] = [
  {
    event: 'timeout',
    level: 'warn',
    perCall: true,
    plural: 'timeouts',
    message: ({ timeout }: TimeoutEvents['timeout'], label: string) => `${label} expired after ${timeout} ms`,
    fields: ({ timeout }: TimeoutEvents['timeout']) => ({ timeout }),
  },
];

/**
 * Rejects with a {@link TimeoutError} when the call has not settled `ms` milliseconds after it
 * started, even if the function ignores its signal, and aborts `ctx.signal` with that same
 * error as the reason so work that listens stops. Code that ignores the signal keeps running
 * in the background: a timeout answers the caller on time, it cannot stop a function that
 * does not listen.
 *
 * @param ms - the deadline in milliseconds; `Infinity` means none.
 * @example
 * ```ts
 * const perAttempt = withTimeout(2_000);
 * await perAttempt.execute(({ signal }) => fetch(url, { signal }));
 * ```
 */
export function withTimeout(ms: number, options?: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(ms, options);
}
