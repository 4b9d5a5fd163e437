/**
 * The local permit lease of a `RedisRateLimiter` with `leaseSize` > 1: the spare permits a
 * replica took from the shared bucket, handed to its next calls with no round trip, and the one
 * round trip in flight that every call arriving on an empty lease waits on.
 *
 * Spare permits lapse `leaseTime` after the round trip that took them (checked against the clock
 * at the next call: no timer). They are not given back: a give-back would cost a round trip and a
 * timer armed while the replica is idle, would fail exactly when Redis is unreachable, and a
 * replica that dies gives nothing back anyway, so the limiter's bound must hold without it.
 */
import type { Admission } from 'bulwark';
import type { RedisStoreError } from './store.js';

/** The state of one call waiting for Redis's answer, or for its reserved permit. */
export interface Pending {
  admission: Admission;
  timer: ReturnType<typeof setTimeout> | undefined;
  local: AbortController | undefined;
  done: boolean;
  /** Counted in the lease round trip in flight: its answer decides this call. */
  asked: boolean;
}

/** What the lease needs of its limiter. */
export interface LeaseHost {
  readonly maxWait: number;
  /** Runs the lease script for `calls` waiting calls and up to `spare` permits more. */
  request(calls: number, spare: number): Promise<unknown>;
  /** Redis answered: the limit is shared. */
  storeAnswered(): void;
  /** Redis failed or timed out. */
  storeFailed(error: RedisStoreError): void;
  /** Lets `pending` in after `wait` ms (at once for 0). */
  grantAfter(pending: Pending, wait: number): void;
  /** Refuses `pending` with a `RateLimitedError` of `retryAfter` ms. */
  refuseLimit(pending: Pending, retryAfter: number): void;
  /** Decides `pending` without Redis, after a failure (locally, or refused with `failClosed`). */
  fallBack(pending: Pending, error: RedisStoreError): void;
}

/** One decision of a lease answer, carried out once the lease's own state is settled. */
type Decision = readonly [pending: Pending, kind: 'grant' | 'refuse', ms: number];

export class PermitLease {
  /** Spare permits held, usable before `until` (this replica's clock, ms). */
  private held = 0;
  private until = 0;
  /**
   * Before `emptyUntil`, the bucket is known to have no permit within `maxWait`: the last answer
   * put the next free permit at `freeAt` or later, and other replicas can only take permits,
   * never add any. Calls are then refused here, with no round trip.
   */
  private emptyUntil = 0;
  private freeAt = 0;
  /** The calls waiting for the round trip in flight (or the next one), first come first served. */
  private queue: Pending[] = [];
  private requesting = false;

  constructor(
    readonly size: number,
    readonly time: number,
    private readonly host: LeaseHost,
  ) {}

  /** Spare permits usable at `now`. */
  available(now: number): number {
    return now < this.until ? this.held : 0;
  }

  /** True while a round trip for the lease is in flight or about to start. */
  get busy(): boolean {
    return this.requesting;
  }

  /** Takes a spare permit for a call starting at `now`; false when none is left (lapsed ones go). */
  take(now: number): boolean {
    if (this.held === 0) return false;
    if (now >= this.until) {
      this.held = 0;
      return false;
    }
    this.held--;
    return true;
  }

  /** The `retryAfter` (ms) to refuse a call at `now` with, when the bucket is known empty; else 0. */
  refusal(now: number): number {
    return now < this.emptyUntil ? this.freeAt - now : 0;
  }

  /** Redis is down: what the last answer said of the bucket no longer holds. */
  forget(): void {
    this.emptyUntil = 0;
  }

  /**
   * Queues a call on the next round trip. The first call of a batch starts it in a microtask, so
   * every call entering in the same turn (100 callers racing) shares that one round trip.
   */
  join(pending: Pending): void {
    this.queue.push(pending);
    if (this.requesting) return;
    this.requesting = true;
    queueMicrotask(this.send);
  }

  private readonly send = (): void => {
    // Calls aborted meanwhile drop out here; one aborted in flight is skipped by the answer.
    // With none left the round trip still goes (a probe while Redis is down must end): it leases spare permits.
    const queue = (this.queue = this.queue.filter((pending) => !pending.done));
    for (const pending of queue) pending.asked = true;
    const sent = Date.now();
    this.host.request(queue.length, this.size - 1).then(
      (answer) => this.answered(answer as unknown[], sent),
      (error: RedisStoreError) => this.failed(error),
    );
  };

  /** Deals the answer: free permits first, then reservations, then the server's refusals, first come first served. */
  private answered(answer: unknown[], sent: number): void {
    this.host.storeAnswered();
    let free = Number(answer[0]);
    const retryAfter = Number(answer[1]) / 1_000;
    const waits = answer.slice(3);
    if (retryAfter > 0) {
      this.freeAt = sent + retryAfter;
      this.emptyUntil = this.freeAt - this.host.maxWait;
    }
    const now = Date.now();
    const queue = this.queue;
    const decisions: Decision[] = [];
    const later: Pending[] = [];
    let reserved = 0;
    for (const pending of queue) {
      if (pending.done) continue;
      if (free > 0) {
        free--;
        decisions.push([pending, 'grant', 0]);
      } else if (reserved < waits.length) {
        decisions.push([pending, 'grant', Number(waits[reserved++]) / 1_000]);
      } else if (pending.asked) {
        decisions.push([pending, 'refuse', retryAfter]);
      } else if (now < this.emptyUntil) {
        decisions.push([pending, 'refuse', this.freeAt - now]);
      } else {
        later.push(pending); // arrived after the round trip left: the next one decides
      }
    }
    // Permits of calls aborted in flight are kept too, up to the lease's size; a reservation of one is spent.
    this.held = Math.min(free, this.size - 1);
    this.until = sent + this.time;
    // The state is settled before any call goes on: a call let in may enter this limiter again at once.
    this.queue = later;
    this.requesting = false;
    if (later.length > 0) {
      this.requesting = true;
      queueMicrotask(this.send);
    }
    for (const [pending, kind, ms] of decisions) {
      if (pending.done) continue;
      if (kind === 'grant') this.host.grantAfter(pending, ms);
      else this.host.refuseLimit(pending, ms);
    }
  }

  private failed(error: RedisStoreError): void {
    this.host.storeFailed(error);
    this.forget();
    const queue = this.queue;
    this.queue = [];
    this.requesting = false;
    for (const pending of queue) if (!pending.done) this.host.fallBack(pending, error);
  }
}
