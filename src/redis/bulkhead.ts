/**
 * A concurrency cap shared by every replica of a service through Redis: each slot is a lease in
 * one sorted set, taken and given back by a script on the server's clock, renewed while its call
 * runs (one timer per replica for all its leases). A replica that dies holding slots gives them
 * back when its leases expire. When Redis fails, a local {@link Bulkhead} of the same options
 * stands in (or calls are refused, with `failClosed`).
 */
import {
  Bulkhead,
  BulkheadRejectedError,
  LayerPolicy,
  type Admission,
  type BulkheadRejectionReason,
  type LayerCall,
  type Listener,
  type PolicyDescription,
  type Unsubscribe,
} from 'bulwark';
import * as validate from '../shared/validate.js';
import { REDIS_BULKHEAD_COUNTERS, REDIS_BULKHEAD_GAUGES, REDIS_BULKHEAD_LOGS } from './description.js';
import { Emitter } from '../shared/emitter.js';
import { ACQUIRE_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT, slotsKey } from './lease-script.js';
import { RedisStoreError, runScript, runnerOf, type RedisClientLike } from './store.js';
import { withoutStack } from '../shared/stack.js';
import { positive } from './util.js';
import { StoreHealth } from './store-health.js';
import { EVENT_NAMES, OPTION_KEYS, PEER_NAMES, type RedisBulkheadEvents, type RedisBulkheadOptions } from './bulkhead-options.js';

/** A call of this replica waiting for Redis's answer or for a slot. */
interface Waiter {
  admission: Admission;
  /** When it stops waiting for a slot (ms, this replica's clock), once refused a first time. */
  deadline: number;
  local: AbortController | undefined;
  done: boolean;
}

/** What a granted call holds: a lease in Redis, or a slot of the local bulkhead. */
type Held = { readonly id: string; readonly free: undefined } | { readonly id: undefined; readonly free: () => void };

/**
 * Limits how many calls run at once across every process that shares `name` on one Redis. Each
 * slot is a lease in a sorted set, taken by a script that first drops expired leases; the call
 * waits for that one round trip, then holds its lease until its work has really ended (even when
 * a timeout answered the caller first), when a second script gives it back. While calls run, one
 * timer per replica renews all its leases every `leaseTime / 3`, so a replica killed mid-call
 * frees its slots within `leaseTime`. A call refused gets {@link BulkheadRejectedError} (the core's).
 *
 * When Redis fails or takes longer than `timeout`, `storeDown` is emitted and a local
 * {@link Bulkhead} of the same options decides (each replica then allows `maxConcurrent`), or
 * with `failClosed` calls are refused; one call per `probeInterval` asks Redis again.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { RedisBulkhead } from 'bulwark/redis';
 * const reports = new RedisBulkhead(new Redis(), { name: 'report-db', maxConcurrent: 20, maxQueue: 100, queueTimeout: 2_000 });
 * const report = await reports.execute(({ signal }) => buildReport(id, { signal }));
 * ```
 */
export class RedisBulkhead extends LayerPolicy<Held | undefined> {
  /** The {@link RedisBulkheadOptions.name | name} in force. */ readonly name: string;
  /** The {@link RedisBulkheadOptions.maxConcurrent | maxConcurrent} in force. */ readonly maxConcurrent: number;
  /** The {@link RedisBulkheadOptions.maxQueue | maxQueue} in force. */ readonly maxQueue: number;
  /** The {@link RedisBulkheadOptions.queueTimeout | queueTimeout} in force. */ readonly queueTimeout: number;
  /** The {@link RedisBulkheadOptions.retryInterval | retryInterval} in force. */ readonly retryInterval: number;
  /** The {@link RedisBulkheadOptions.leaseTime | leaseTime} in force. */ readonly leaseTime: number;
  /** The {@link RedisBulkheadOptions.timeout | timeout} in force. */ readonly timeout: number;
  /** The {@link RedisBulkheadOptions.probeInterval | probeInterval} in force. */ readonly probeInterval: number;
  /** The {@link RedisBulkheadOptions.failClosed | failClosed} in force. */ readonly failClosed: boolean;
  /** The Redis key of the cap. */
  readonly key: string;
  private readonly runner: ReturnType<typeof runnerOf>;
  private readonly local: Bulkhead;
  private readonly events = new Emitter<RedisBulkheadEvents>(EVENT_NAMES);
  /** Whether Redis answers, and which call probes it while it does not. */
  private readonly health: StoreHealth;
  private readonly replica = globalThis.crypto.randomUUID();
  private leases = 0;
  /** The ids of the leases this replica holds in Redis. */
  private readonly held = new Set<string>();
  /** The calls refused a slot once that wait for another, first come first asked; each leaves it as its wait ends. */
  private readonly waiters = new Set<Waiter>();
  private asking = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private renewTimer: ReturnType<typeof setInterval> | undefined;
  /** Set by `close()`: nothing more is taken from Redis. */
  private closed = false;
  /** Scripts that may leave or take a lease, in flight: `close()` waits for them. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(client: RedisClientLike, options: RedisBulkheadOptions) {
    super();
    this.runner = runnerOf('RedisBulkhead', client);
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`RedisBulkhead(client, options): options with name and maxConcurrent are required, got ${validate.show(options)}`);
    }
    const opts = validate.options('RedisBulkhead', options, OPTION_KEYS, PEER_NAMES);
    if (opts.name === undefined) throw new TypeError('RedisBulkhead name is required: every replica sharing the cap uses the same name');
    this.name = validate.text('RedisBulkhead name', opts.name);
    if (this.name === '') throw new RangeError('RedisBulkhead name must be a non-empty string, got ""');
    if (opts.maxConcurrent === undefined) throw new TypeError('RedisBulkhead maxConcurrent is required');
    this.maxConcurrent = validate.count('RedisBulkhead maxConcurrent', opts.maxConcurrent, 1);
    this.maxQueue = opts.maxQueue === undefined ? 0 : validate.count('RedisBulkhead maxQueue', opts.maxQueue, 0, true);
    this.queueTimeout = opts.queueTimeout === undefined ? Infinity : validate.duration('RedisBulkhead queueTimeout', opts.queueTimeout, true);
    this.retryInterval = opts.retryInterval === undefined ? 20 : positive('RedisBulkhead retryInterval', validate.duration('RedisBulkhead retryInterval', opts.retryInterval));
    this.leaseTime = opts.leaseTime === undefined ? 10_000 : positive('RedisBulkhead leaseTime', validate.duration('RedisBulkhead leaseTime', opts.leaseTime));
    if (this.leaseTime < 3) throw new RangeError(`RedisBulkhead leaseTime must be at least 3 ms (it is renewed every leaseTime / 3), got ${this.leaseTime}`);
    this.timeout = opts.timeout === undefined ? 100 : positive('RedisBulkhead timeout', validate.duration('RedisBulkhead timeout', opts.timeout));
    this.probeInterval = opts.probeInterval === undefined ? 1_000 : validate.duration('RedisBulkhead probeInterval', opts.probeInterval);
    this.health = new StoreHealth(this.probeInterval, this.events);
    this.failClosed = opts.failClosed === undefined ? false : validate.boolean('RedisBulkhead failClosed', opts.failClosed);
    this.key = slotsKey(this.name);
    this.local = new Bulkhead({ maxConcurrent: this.maxConcurrent, maxQueue: this.maxQueue, queueTimeout: this.queueTimeout, name: this.name });
  }

  /** True while Redis answers (the cap is shared); false while a local bulkhead stands in. */
  get storeUp(): boolean {
    return this.health.up;
  }

  /** How many calls of this replica hold a slot now (a lease in Redis or a local slot). */
  get active(): number {
    return this.held.size + this.local.active;
  }

  /** How many calls of this replica wait for a slot now. */
  get queued(): number {
    return this.waiters.size + this.local.queued;
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes.
   *
   * @example
   * ```ts
   * reports.on('storeDown', ({ error }) => log.warn({ err: error }, 'concurrency cap no longer shared'));
   * ```
   */
  on<K extends keyof RedisBulkheadEvents>(event: K, listener: Listener<RedisBulkheadEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /**
   * For a graceful shutdown, before the client disconnects: from now on calls are decided by the
   * local bulkhead alone and waiting calls move to it; resolves once every lease this replica
   * holds is back in Redis — those of calls still running too, as each ends (race it with a
   * deadline of your own if a call may never end). A lease whose give-back fails expires.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', async () => {
   *   await reports.close();
   *   await redis.quit();
   * });
   * ```
   */
  async close(): Promise<void> {
    this.closed = true;
    this.retryTimer = void clearTimeout(this.retryTimer);
    for (const waiter of [...this.waiters]) {
      this.waiters.delete(waiter);
      this.decideLocally(waiter);
    }
    while (this.held.size > 0 || this.inFlight.size > 0) {
      if (this.inFlight.size > 0) await Promise.all([...this.inFlight].map((sent) => sent.then(noop, noop)));
      else await new Promise<void>((resolve) => (this.returned = resolve));
    }
  }

  /** Wakes `close()` when a held lease starts its way back. */
  private returned: (() => void) | undefined = undefined;

  /** The call waits for the acquire script's answer (or the local bulkhead's, while Redis is down). */
  protected override enter(call: LayerCall): Admission {
    call.trackWork();
    const waiter: Waiter = { admission: NOT_YET, deadline: Infinity, local: undefined, done: false };
    waiter.admission = call.wait(this.leave, waiter);
    const now = Date.now();
    if (this.closed) {
      this.decideLocally(waiter);
    } else if (this.health.mayAsk(now)) {
      this.ask(waiter, true);
    } else {
      this.decideLocally(waiter);
    }
    return waiter.admission;
  }

  /** The work on a slot has ended: its lease goes back to Redis (or its local slot is freed). */
  protected override released(held: Held | undefined): void {
    if (held === undefined) return;
    if (held.free !== undefined) {
      held.free();
      return;
    }
    this.held.delete(held.id);
    if (this.held.size === 0) this.stopRenewing();
    this.giveBack(held.id).then(() => this.askForWaiters());
  }

  protected describe(): PolicyDescription {
    return {
      kind: 'shared-bulkhead',
      label: 'shared bulkhead',
      name: this.name,
      refuses: true,
      counters: REDIS_BULKHEAD_COUNTERS,
      gauges: REDIS_BULKHEAD_GAUGES,
      logs: REDIS_BULKHEAD_LOGS,
      readGauges: () => ({ active: this.active, queued: this.queued, redisStoreUp: this.health.up ? 1 : 0 }),
      on: (event, listener) => this.on(event as keyof RedisBulkheadEvents, listener),
    };
  }

  /** Asks Redis for a slot for `waiter`; `first`: it has not waited in this replica's queue yet. */
  private ask(waiter: Waiter, first: boolean): void {
    const id = `${this.replica}:${++this.leases}`;
    // An acquire that timed out may still run later (the client queues it while reconnecting):
    // if it then took a slot, the slot goes back right after, in that order.
    const late = (answer: unknown): void => void (Number((answer as [number])[0]) === 1 && this.giveBack(id));
    this.track(runScript(this.runner, ACQUIRE_SCRIPT, [this.key], [String(this.maxConcurrent), String(this.leaseTime), id], this.timeout, 'RedisBulkhead', late)).then(
      (answer) => {
        if (!first) this.asking = false;
        this.health.answered();
        const granted = Number((answer as [number])[0]) === 1;
        // Aborted while asking, or moved to the local cap by close(): a slot granted goes back at once.
        if (waiter.done || waiter.local !== undefined) {
          if (granted) void this.giveBack(id);
        } else if (granted) {
          this.waiters.delete(waiter);
          this.held.add(id);
          this.startRenewing();
          waiter.done = true;
          waiter.admission.grant({ id, free: undefined } satisfies Held);
        } else if (first) {
          if (this.closed) this.decideLocally(waiter);
          else if (this.waiters.size >= this.maxQueue) this.refuse(waiter, 'full');
          else {
            waiter.deadline = Date.now() + this.queueTimeout;
            this.waiters.add(waiter);
            this.armRetry();
          }
        }
        if (!first && (granted || waiter.done)) this.askForWaiters();
      },
      (error: RedisStoreError) => {
        if (!first) this.asking = false;
        this.health.failed(error);
        if (first) {
          if (!waiter.done) this.decideLocally(waiter);
          return;
        }
        for (const w of [...this.waiters]) {
          this.waiters.delete(w);
          this.decideLocally(w);
        }
      },
    );
  }

  /** The first waiter asks again, unless one asks already; waiters past their deadline are refused. */
  private askForWaiters(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const waiter of this.waiters) if (now >= waiter.deadline) this.refuse(waiter, 'queue-timeout');
    if (this.asking) return;
    const [first] = this.waiters;
    if (first === undefined) {
      this.retryTimer = void clearTimeout(this.retryTimer);
      return;
    }
    this.asking = true;
    this.ask(first, false);
  }

  /** One timer per replica while calls wait for a slot another replica may free; it fires at the first waiter's deadline if that comes sooner. */
  private armRetry(): void {
    if (this.retryTimer !== undefined) return;
    const [first] = this.waiters as Set<Waiter | undefined>;
    const untilDeadline = first === undefined ? Infinity : first.deadline - Date.now();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.askForWaiters();
      if (this.waiters.size > 0) this.armRetry();
    }, Math.min(this.retryInterval, untilDeadline));
  }

  /** One timer per replica while it holds leases: every `leaseTime / 3`, one script renews them all. */
  private startRenewing(): void {
    if (this.renewTimer !== undefined) return;
    this.renewTimer = setInterval(() => {
      runScript(this.runner, RENEW_SCRIPT, [this.key], [String(this.leaseTime), ...this.held], this.timeout, 'RedisBulkhead').then(
        () => this.health.answered(),
        (error: RedisStoreError) => this.health.failed(error),
      );
    }, this.leaseTime / 3);
  }

  private stopRenewing(): void {
    this.renewTimer = void clearInterval(this.renewTimer);
  }

  /** Gives a lease back; a failure is reported and the lease expires on its own. */
  private giveBack(id: string): Promise<void> {
    const wake = this.returned;
    this.returned = undefined;
    const back = this.track(runScript(this.runner, RELEASE_SCRIPT, [this.key], [id], this.timeout, 'RedisBulkhead')).then(
      () => this.health.answered(),
      (error: RedisStoreError) => this.health.failed(error),
    );
    wake?.();
    return back;
  }

  /** Keeps `sent` in flight until it settles, for `close()`. */
  private track<T>(sent: Promise<T>): Promise<T> {
    this.inFlight.add(sent);
    const done = (): void => void this.inFlight.delete(sent);
    sent.then(done, done);
    return sent;
  }

  /** Redis is down: the local bulkhead of the same options decides, or with `failClosed` the call is refused. */
  private decideLocally(waiter: Waiter): void {
    if (this.failClosed && !this.closed) {
      waiter.done = true;
      const error = new RedisStoreError('RedisBulkhead: Redis is down and failClosed is set');
      if (this.events.has('rejected')) this.events.emit('rejected', { error, reason: 'store-down' });
      waiter.admission.refuse(error);
      return;
    }
    const controller = (waiter.local = new AbortController());
    this.local
      .execute(
        () =>
          new Promise<void>((free) => {
            waiter.local = undefined;
            waiter.done = true;
            waiter.admission.grant({ id: undefined, free } satisfies Held);
          }),
        { signal: controller.signal },
      )
      .catch((error: unknown) => {
        waiter.local = undefined;
        if (waiter.done) return;
        waiter.done = true;
        if (error instanceof BulkheadRejectedError && this.events.has('rejected')) this.events.emit('rejected', { error, reason: error.reason });
        waiter.admission.refuse(error);
      });
  }

  private refuse(waiter: Waiter, reason: BulkheadRejectionReason): void {
    this.waiters.delete(waiter);
    waiter.done = true;
    const error = withoutStack(() => new BulkheadRejectedError(reason, this.maxConcurrent, this.maxQueue));
    if (this.events.has('rejected')) this.events.emit('rejected', { error, reason });
    waiter.admission.refuse(error);
  }

  /** A waiting call was aborted: it leaves the queue (a lease granted later goes straight back). */
  private readonly leave = (_reason: unknown, waiter: Waiter): void => {
    waiter.done = true;
    this.waiters.delete(waiter);
    waiter.local?.abort();
    waiter.local = undefined;
    if (this.waiters.size === 0 && !this.asking) this.retryTimer = void clearTimeout(this.retryTimer);
  };
}

const NOT_YET: Admission = { grant() {}, refuse() {} };
const noop = (): void => {};
