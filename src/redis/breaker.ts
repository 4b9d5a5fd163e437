/**
 * A circuit breaker shared by every replica of a service through Redis. Each replica decides
 * its calls locally from its view of the shared state (no round trip on the happy path),
 * reports outcomes in batches, and learns every change by pub/sub (or, without it, from the
 * answers to its reports). Half-open trials are leases, so the whole fleet sends the
 * recovering dependency `halfOpenMaxCalls` trials at once, not one per replica.
 */
import {
  CircuitOpenError,
  LayerPolicy,
  isRefusal,
  type Admission,
  type CircuitBreakerStats,
  type CircuitState,
  type CircuitStateChangeReason,
  type LayerCall,
  type Listener,
  type PolicyDescription,
  type Unsubscribe,
} from 'bulwark';
import { Emitter } from '../shared/emitter.js';
import { synchronousAnswer } from '../shared/report.js';
import { withoutStack } from '../shared/stack.js';
import { breakerKeys, type SharedState } from './breaker-script.js';
import { sharedSettings, type RedisCircuitBreakerEvents, type RedisCircuitBreakerOptions, type SharedSettings } from './breaker-options.js';
import { LocalStandIn, type LocalToken, type Waiting } from './breaker-local.js';
import { describeSharedBreaker } from './description.js';
import { runnerOf, type RedisClientLike } from './store.js';
import { OutcomeBatch } from './breaker-batch.js';
import { BreakerLink } from './breaker-link.js';
import { SharedView } from './breaker-view.js';

const EVENT_NAMES: readonly (keyof RedisCircuitBreakerEvents)[] = ['stateChange', 'success', 'failure', 'rejected', 'storeError', 'storeDown', 'storeUp'];

/** A call of the shared state: its generation and, for a trial, its lease. */
interface SharedToken {
  readonly gen: number;
  readonly lease: string | undefined;
  readonly startedAt: number;
  abandoned: boolean;
}
/** A call's token: the generation alone for a closed-state call nobody times. */
type Token = number | SharedToken | LocalToken;

const FAILED = Symbol('bulwark.redis.counted-failure');

/**
 * A circuit breaker whose state every replica sharing `name` on one Redis sees and changes: the
 * options of the core's `CircuitBreaker`, applied to the calls of the whole fleet. When one
 * replica's reports open it, every replica refuses calls (within milliseconds with a
 * `subscriber`); a cold replica learns the state with its first call; half-open trials are
 * limited fleet-wide. While Redis is down, a local breaker of the same options decides
 * (`storeDown`), starting from the last shared state this replica saw.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { RedisCircuitBreaker } from 'bulwark/redis';
 * const redis = new Redis();
 * const payments = new RedisCircuitBreaker(redis, { name: 'payments', failureThreshold: 5, subscriber: redis.duplicate() });
 * const receipt = await payments.execute(({ signal }) => charge(order, { signal }));
 * ```
 */
export class RedisCircuitBreaker extends LayerPolicy<unknown> {
  /** The {@link RedisCircuitBreakerOptions.name | name} in force. */ readonly name: string;
  /** The Redis key of the shared state (also the channel its changes are published on). */
  readonly key: string;
  private readonly settings: SharedSettings;
  private readonly events = new Emitter<RedisCircuitBreakerEvents>(EVENT_NAMES);
  private readonly standIn: LocalStandIn;
  private readonly batch: OutcomeBatch;
  private readonly replica = globalThis.crypto.randomUUID();
  /** Numbers this replica's trial leases: `<replica>:<serial>` is unique in the fleet. */
  private leaseSerial = 0;
  private readonly view: SharedView;
  private readonly link: BreakerLink;
  private trialsAsked = 0;
  private leases = 0;
  private readonly viewWaiters: Waiting[] = [];

  constructor(client: RedisClientLike, options: RedisCircuitBreakerOptions) {
    super();
    const run = runnerOf('RedisCircuitBreaker', client); // the client's shape, checked before the options
    this.settings = sharedSettings(options, (error) => error === FAILED);
    this.name = this.settings.name;
    const keys = breakerKeys(this.name);
    this.key = keys[0];
    this.batch = new OutcomeBatch(this.settings);
    this.view = new SharedView((from, to, reason) => this.announce(from, to, reason));
    this.standIn = new LocalStandIn(this.settings.local, FAILED, (from, to, reason) => this.announce(from, to, reason));
    if (this.settings.isFailureResult !== undefined) this.onValue = this.onResult;
    this.link = new BreakerLink(this.settings, run, keys, this.view, this.batch, this.standIn, this.events, {
      read: () => this.serveViewWaiters(),
      readFailed: () => {
        for (const waiting of this.viewWaiters.splice(0)) if (!waiting.done) this.standIn.decide(waiting, this.rejectedLocally);
      },
    });
  }

  /** True while Redis answers (the breaker is shared); false while local state stands in. */
  get storeUp(): boolean {
    return this.link.up && !this.link.detached;
  }

  /** Consecutive failures, across the fleet, that open the circuit. */
  get failureThreshold(): number {
    return this.settings.failureThreshold;
  }

  /**
   * The state as this replica sees it: the shared state as last pushed or read (an open circuit
   * whose break has ended reads `'half-open'`), or the local stand-in's while Redis is down.
   */
  get state(): CircuitState {
    if (!this.storeUp) return this.standIn.breaker.state;
    return this.view.effective(Date.now());
  }

  /** The shared state with the counts behind it, as of this replica's last answer from Redis (local ones while Redis is down). */
  stats(): CircuitBreakerStats {
    return this.storeUp ? this.view.stats(Date.now()) : this.standIn.breaker.stats();
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof RedisCircuitBreakerEvents>(event: K, listener: Listener<RedisCircuitBreakerEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** Opens the circuit for the whole fleet until {@link RedisCircuitBreaker.reset}; resolves once Redis has it. Asks Redis also while it is down: when no answer comes, rejects with a {@link RedisStoreError}, and this replica alone is isolated until Redis's state returns. */
  isolate(): Promise<void> {
    return this.manual('isolated');
  }

  /** Closes the circuit for the whole fleet and forgets its failures, window and openings; resolves once Redis has it. Asks Redis also while it is down: when no answer comes, rejects with a {@link RedisStoreError}, and this replica alone is closed until Redis's state returns. */
  reset(): Promise<void> {
    return this.manual('closed');
  }

  /**
   * Reports the outcomes not yet reported now, and resolves once Redis has them (a failed report
   * is dropped, and marks Redis down). For the end of a serverless invocation, whose instance may
   * be frozen before the next sync interval.
   *
   * @example
   * ```ts
   * export const handler = async (event: { order: Order }) => {
   *   try { return await payments.execute(() => charge(event.order)); } finally { await payments.flush(); }
   * };
   * ```
   */
  flush(): Promise<void> {
    return this.link.report();
  }

  /**
   * Reports the outcomes not yet reported, stops listening for changes and arms no timer again.
   * Calls made after it are decided by the local stand-in alone. Resolves when that is done
   * (a failed report is dropped: the fleet goes on without it).
   */
  close(): Promise<void> {
    return this.link.close();
  }

  protected override enter(call: LayerCall): unknown {
    // The happy path: closed, the view kept fresh by pushes, nothing to time.
    if (this.view.state === 'closed' && this.view.pushing && this.link.up && this.batch.untimed) return this.view.gen;
    return this.enterSlowly(call);
  }

  private enterSlowly(call: LayerCall): unknown {
    if (!this.link.up || this.link.detached) return this.waitLocally(call);
    const now = Date.now();
    if (this.view.shared === undefined || !(this.view.pushing || now - this.view.at <= 2 * this.settings.syncInterval)) {
      // A cold replica, or a view nobody refreshed lately: the call waits for the shared state.
      call.trackWork();
      const waiting: Waiting = { admission: NOT_YET, done: false };
      waiting.admission = call.wait(leave, waiting);
      this.viewWaiters.push(waiting);
      this.link.flush();
      return waiting.admission;
    }
    const decision = this.decide(now);
    if (decision instanceof CircuitOpenError) throw decision;
    if (decision === CLOSED) return this.closedToken();
    call.trackWork();
    const waiting: Waiting = { admission: NOT_YET, done: false };
    waiting.admission = call.wait(leave, waiting);
    this.askForTrial(waiting);
    return waiting.admission;
  }

  private closedToken(): Token {
    // Stryker disable next-line BooleanLiteral: `released()` frees nothing for a token without a lease, abandoned or not.
    return this.batch.untimed ? this.view.gen : { gen: this.view.gen, lease: undefined, startedAt: Date.now(), abandoned: false };
  }

  /** What the view says of a call now: run it, refuse it, or ask for a trial lease. */
  private decide(now: number): typeof CLOSED | typeof TRIAL | CircuitOpenError {
    switch (this.view.effective(now)) {
      case 'closed':
        return CLOSED;
      case 'open':
        return this.refusal(this.view.retryAt - now, 'open');
      case 'half-open':
        if (now < this.view.trialsFullUntil || this.trialsAsked + this.leases >= this.settings.halfOpenMaxCalls) return this.refusal(0, 'half-open');
        return TRIAL;
      default:
        return this.refusal(Infinity, 'isolated');
    }
  }

  private refusal(retryAfter: number, state: 'open' | 'half-open' | 'isolated'): CircuitOpenError {
    const error = withoutStack(() => new CircuitOpenError(Math.max(0, retryAfter), state));
    // Stryker disable next-line ConditionalExpression: emit() with no listener returns at once; the guard only spares building the payload.
    if (this.events.has('rejected')) this.events.emit('rejected', { error });
    return error;
  }

  private askForTrial(waiting: Waiting): void {
    this.trialsAsked++;
    const lease = `${this.replica}:${++this.leaseSerial}`;
    this.link.ask('trial', [lease]).then(
      (answer) => {
        this.trialsAsked--;
        if (answer.granted === 1) {
          if (waiting.done) {
            this.link.tell('done', [String(answer.gen), lease, 'a']);
            return;
          }
          this.leases++;
          // Stryker disable next-line BooleanLiteral: nothing reads `done` of a waiting once it is answered.
          waiting.done = true;
          waiting.admission.grant({ gen: answer.gen, lease, startedAt: Date.now(), abandoned: false } satisfies SharedToken);
          return;
        }
        if (waiting.done) return;
        // Stryker disable next-line BooleanLiteral: nothing reads `done` of a waiting once it is answered.
        waiting.done = true;
        if (answer.granted === 2) {
          waiting.admission.grant(this.closedToken());
          return;
        }
        if (answer.state === 'half-open') this.view.trialsFullUntil = Date.now() + this.settings.syncInterval;
        const now = Date.now();
        const state = this.view.effective(now);
        waiting.admission.refuse(
          state === 'open' ? this.refusal(this.view.retryAt - now, 'open') : state === 'isolated' ? this.refusal(Infinity, 'isolated') : this.refusal(0, 'half-open'),
        );
      },
      () => {
        this.trialsAsked--;
        if (!waiting.done) this.standIn.decide(waiting, this.rejectedLocally);
      },
    );
  }

  private readonly rejectedLocally = (error: CircuitOpenError): void => {
    // Stryker disable next-line ConditionalExpression: emit() with no listener returns at once; the guard only spares building the payload.
    if (this.events.has('rejected')) this.events.emit('rejected', { error });
  };

  private waitLocally(call: LayerCall): Admission {
    call.trackWork();
    const waiting: Waiting = { admission: NOT_YET, done: false };
    waiting.admission = call.wait(leave, waiting);
    this.standIn.decide(waiting, this.rejectedLocally);
    return waiting.admission;
  }

  protected override onValue(token: unknown, value: unknown, _call: LayerCall): unknown {
    this.counted(token as Token, false, undefined, false);
    return value;
  }

  /** With `isFailureResult`, the breaker's `onValue`: the value is counted as it classifies it, and passed on. */
  private onResult(token: unknown, value: unknown, call: LayerCall): unknown {
    if (call.callerAborted) {
      this.notCounted(token as Token);
      return value;
    }
    let failed: boolean;
    try {
      failed = Boolean(synchronousAnswer('RedisCircuitBreaker isFailureResult', (this.settings.isFailureResult as (value: unknown) => boolean)(value)));
    } catch (thrown) {
      this.counted(token as Token, true, thrown, false);
      throw thrown;
    }
    this.counted(token as Token, failed, value, failed); // a failing value is the failure event's `value`
    return value;
  }

  protected override onError(token: unknown, error: unknown, call: LayerCall): never {
    if (call.callerAborted || isRefusal(error)) {
      this.notCounted(token as Token);
      throw error;
    }
    const isFailure = this.settings.isFailure;
    let failed = true;
    if (isFailure !== undefined) {
      try {
        failed = synchronousAnswer('RedisCircuitBreaker isFailure', isFailure(error)) !== false;
      } catch (thrown) {
        this.counted(token as Token, true, thrown, false);
        throw thrown;
      }
    }
    this.counted(token as Token, failed, error, false);
    throw error;
  }

  protected override released(token: unknown): void {
    const given = token as Token;
    if (typeof given !== 'object' || !given.abandoned) return;
    if ('settle' in given) given.settle();
    else if (given.lease !== undefined) {
      this.leases--;
      this.link.tell('done', [String(given.gen), given.lease, 'a']);
    }
  }

  /** The caller gave up, or a policy inside refused: not counted; a trial's place is freed once its work ends. */
  private notCounted(token: Token): void {
    if (typeof token !== 'object') return;
    token.abandoned = true;
    if ('settle' in token) token.controller.abort();
  }

  /** Counts an outcome: into the batch, as a trial's report, or by the local stand-in. */
  private counted(token: Token, failed: boolean, error: unknown, isResult: boolean): void {
    let slow = false;
    if (typeof token === 'object') {
      if ('settle' in token) {
        token.outcome(failed); // counted a few ticks later: `failure` tells the local count plus this one
        this.told(failed, error, isResult, this.standIn.breaker.state, LOCAL);
        return;
      }
      const limit = this.settings.slowCallDuration;
      slow = limit !== undefined && Date.now() - token.startedAt > limit;
      if (token.lease !== undefined) {
        this.leases--;
        this.told(failed, error, isResult, 'half-open', TRIAL); // Redis counts it: `failure` tells the shared count plus this one
        this.link.tell('done', [String(token.gen), token.lease, failed ? 'f' : slow ? 'w' : 's']);
        return;
      }
    }
    const gen = typeof token === 'number' ? token : token.gen;
    if (gen !== this.view.gen) return; // admitted before a change: stale news
    // A success with no failure to reset and no window to fill is no news: reported later, it
    // would reset failures other replicas reported after it happened.
    const news = failed || slow || !this.batch.noNews(this.view.shared);
    const couldOpen = news && this.batch.record(failed, slow, this.view.gen, this.view.shared);
    this.told(failed, error, isResult, this.view.state, CLOSED); // once counted: `failure` tells the count with it
    if (couldOpen) {
      this.link.flush();
      return;
    }
    if (!news && this.view.pushing) return;
    // Without pushes the reports are also how this replica hears of changes: one per interval while it has calls.
    this.link.scheduleFlush();
  }

  private told(failed: boolean, error: unknown, isResult: boolean, state: CircuitState, path: Path): void {
    const events = this.events;
    if (!failed) {
      // Stryker disable next-line ConditionalExpression: emit() with no listener returns at once; the guard only spares building the payload.
      if (events.has('success')) events.emit('success', { state });
      return;
    }
    // Stryker disable next-line ConditionalExpression: emit() with no listener returns at once; the guard only spares counting and building the payload.
    if (!events.has('failure')) return;
    const consecutiveFailures = path === CLOSED ? this.batch.consecutiveFailures(this.view.shared) : 1 + (path === TRIAL ? (this.view.shared as SharedState).consecutiveFailures : this.standIn.breaker.stats().consecutiveFailures);
    events.emit('failure', isResult ? { error: undefined, state, consecutiveFailures, value: error } : { error, state, consecutiveFailures });
  }

  private serveViewWaiters(): void {
    const now = Date.now();
    for (const waiting of this.viewWaiters.splice(0)) {
      if (waiting.done) continue;
      const decision = this.decide(now);
      if (decision === TRIAL) {
        this.askForTrial(waiting);
        continue;
      }
      // Stryker disable next-line BooleanLiteral: nothing reads `done` of a waiting once it is answered.
      waiting.done = true;
      if (decision === CLOSED) waiting.admission.grant(this.closedToken());
      else waiting.admission.refuse(decision);
    }
  }

  private announce(from: CircuitState, to: CircuitState, reason: CircuitStateChangeReason): void {
    // Stryker disable next-line ConditionalExpression: emit() with no listener returns at once; the guard only spares building the payload.
    if (this.events.has('stateChange')) this.events.emit('stateChange', { from, to, reason });
  }

  private async manual(to: 'isolated' | 'closed'): Promise<void> {
    const up = this.storeUp;
    const from = up ? this.view.effective(Date.now()) : this.standIn.breaker.state;
    this.standIn.manual(to);
    if (up) this.view.manual(to);
    if (from !== to) this.announce(from, to, 'manual'); // with Redis down too, as the core breaker does: the state callers see changed
    // Stryker disable next-line ArrayDeclaration: the script reads no argument after the options for `isolate` and `reset`.
    await this.link.ask(to === 'isolated' ? 'isolate' : 'reset', []); // while Redis is down too: its answer brings it back, with the change for the fleet
  }

  protected describe(): PolicyDescription {
    return describeSharedBreaker(this.name, () => ({ ...this.stats(), redisStoreUp: this.storeUp ? 1 : 0 }), (event, listener) => this.on(event as keyof RedisCircuitBreakerEvents, listener));
  }
}

const CLOSED = Symbol('closed');
const TRIAL = Symbol('trial');
const LOCAL = Symbol('local');
type Path = typeof CLOSED | typeof TRIAL | typeof LOCAL; // which path counted an outcome: the shared batch, a trial lease, the local breaker
const NOT_YET: Admission = { grant() {}, refuse() {} };

function leave(_reason: unknown, waiting: Waiting): void {
  waiting.done = true;
}
