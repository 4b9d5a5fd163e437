import { systemClock, type Clock } from './clock.js';
import { TimeoutError } from './errors.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { SingleLayerPolicy, type Call, type Scope } from './policy.js';
import * as validate from './validate.js';

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
  /** The deadline passed; the call rejects with `error`. */
  timeout: { readonly error: TimeoutError; readonly timeout: number };
}

/** The policy {@link withTimeout} builds. */
export class TimeoutPolicy extends SingleLayerPolicy {
  /** The deadline in ms (`Infinity`: none). */
  readonly timeout: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  /** @internal */
  readonly abortsWork: boolean;
  private readonly clock: Clock;
  private readonly events = new Emitter<TimeoutEvents>(['timeout']);

  constructor(timeout: number, options?: TimeoutOptions) {
    super();
    const opts = validate.options('withTimeout', options);
    this.timeout = validate.duration('withTimeout(ms): ms', timeout, true);
    this.clock = opts.clock === undefined ? systemClock : validate.clock('withTimeout clock', opts.clock);
    this.name = opts.name === undefined ? undefined : validate.text('withTimeout name', opts.name);
    this.abortsWork = this.timeout !== Infinity;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof TimeoutEvents>(event: K, listener: Listener<TimeoutEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** @internal */
  run(call: Call, scope: Scope, index: number): Promise<unknown> {
    if (this.timeout === Infinity) return call.next(index + 1, scope);
    const inner = scope.openAbortable();
    const clock = this.clock;
    return new Promise((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        const error = new TimeoutError(this.timeout);
        if (this.events.has('timeout')) this.events.emit('timeout', { error, timeout: this.timeout });
        call.abort(inner, error);
        reject(error);
      }, this.timeout);
      call.next(index + 1, inner).then(
        (value) => {
          clock.clearTimeout(timer);
          call.forgetSignal(inner);
          resolve(value);
        },
        (error: unknown) => {
          clock.clearTimeout(timer);
          call.forgetSignal(inner);
          reject(error);
        },
      );
    });
  }
}

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
