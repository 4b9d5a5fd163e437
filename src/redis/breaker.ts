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
  type CircuitBreakerEvents,
  type CircuitBreakerStats,
  type CircuitState,
  type CircuitStateChangeReason,
  type LayerCall,
  type Listener,
  type PolicyDescription,
  type Unsubscribe,
} from 'bulwark';
import { Emitter } from '../shared/emitter.js';
import { reportUncaught, synchronousAnswer } from '../shared/report.js';
import { withoutStack } from '../shared/stack.js';
import { BREAKER_SCRIPT, breakerKeys, parseAnswer, type SharedState } from './breaker-script.js';
import { sharedSettings, type RedisCircuitBreakerOptions, type SharedSettings } from './breaker-options.js';
import { LocalStandIn, type LocalToken } from './breaker-local.js';
import { REDIS_BREAKER_COUNTERS, REDIS_BREAKER_GAUGES, REDIS_BREAKER_LOGS } from './description.js';
import { RedisStoreError, runScript, runnerOf, type RedisClientLike } from './store.js';
import { listen } from './subscriber.js';
import { OutcomeBatch } from './breaker-batch.js';

/** Events of a {@link RedisCircuitBreaker}: the core breaker's, seen by this replica, and the store's. */
export interface RedisCircuitBreakerEvents extends CircuitBreakerEvents {
  /** A call to Redis failed or timed out. */
  storeError: { readonly error: RedisStoreError };
  /** Redis stopped answering: this replica decides with local state until `storeUp`. */
  storeDown: { readonly error: RedisStoreError };
  /** Redis answers again: the breaker is shared again (the shared state wins). */
  storeUp: Record<string, never>;
}

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

/** A call waiting for Redis: for a fresh view, or for a trial lease. */
interface Waiting {
  admission: Admission;
  done: boolean;
}

const FAILED = Symbol('bulwark.redis.counted-failure');
let replicas = 0;

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
 * import Redis from 'ioredis';
 * import { RedisCircuitBreaker } from 'bulwark/redis';
 * const redis = new Redis();
 * const payments = new RedisCircuitBreaker(redis, { name: 'payments', failureThreshold: 5, subscriber: redis.duplicate() });
 * const receipt = await payments.execute(({ signal }) => charge(order, { signal }));
 * ```
 */
export class RedisCircuitBreaker extends LayerPolicy<unknown> {
  readonly name: string;
  /** The Redis key of the shared state (also the channel its changes are published on). */
  readonly key: string;
  private readonly settings: SharedSettings;
  private readonly runner: ReturnType<typeof runnerOf>;
  private readonly keys: string[];
  private readonly events = new Emitter<RedisCircuitBreakerEvents>(EVENT_NAMES);
  private readonly standIn: LocalStandIn;
  private readonly batch: OutcomeBatch;
  private readonly replica = `${(++replicas).toString(36)}.${Math.random().toString(36).slice(2, 10)}`;
  // The view of the shared state, times on this replica's clock.
  private viewState: CircuitState = 'closed';
  private gen = -1;
  private retryAt = 0;
  private openedAt: number | undefined = undefined;
  private reason: CircuitStateChangeReason = 'restored';
  private shared: SharedState | undefined = undefined;
  private viewAt = -Infinity;
  /** The server's clock minus this replica's, from the last answer. */
  private offset = 0;
  /** True while changes are pushed and the view was read since the subscription (re)started. */
  private pushing = false;
  private pushLiveSince: number | undefined = undefined;
  private unsubscribe: (() => Promise<void>) | undefined = undefined;
  /** Until when this replica refuses half-open calls without asking (every trial was taken). */
  private trialsFullUntil = 0;
  private trialsAsked = 0;
  private leases = 0;
  private up = true;
  private detached = false;
  private halfOpenAnnounced = -1;
  private flushTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private flushing = false;
  private flushAgain = false;
  private readonly viewWaiters: Waiting[] = [];
  private probeTimer: ReturnType<typeof setInterval> | undefined = undefined;
  private breakMemo: [opens: number, duration: number] = [0, 0];

  constructor(client: RedisClientLike, options: RedisCircuitBreakerOptions) {
    super();
    this.runner = runnerOf('RedisCircuitBreaker', client);
    this.settings = sharedSettings(options, (error) => error === FAILED);
    this.name = this.settings.name;
    this.keys = breakerKeys(this.name);
    this.key = this.keys[0] as string;
    this.batch = new OutcomeBatch(this.settings);
    this.standIn = new LocalStandIn(this.settings.local, FAILED, (from, to, reason) => this.announce(from, to, reason));
    if (this.settings.isFailureResult !== undefined) this.onValue = this.onResult;
    const subscriber = this.settings.subscriber;
    if (subscriber !== undefined) {
      listen('RedisCircuitBreaker', subscriber, this.key, {
        message: (text) => this.pushed(text),
        lost: () => {
          this.pushLiveSince = undefined;
          this.pushing = false;
        },
        resumed: () => {
          this.pushLiveSince = Date.now();
        },
      }).then(
        (unsubscribe) => {
          this.unsubscribe = unsubscribe;
          this.pushLiveSince = Date.now();
          if (this.detached) void this.close();
        },
        (error: unknown) => this.storeFailed(storeError('could not subscribe to its channel', error), false),
      );
    }
  }

  /** True while Redis answers (the breaker is shared); false while local state stands in. */
  get storeUp(): boolean {
    return this.up && !this.detached;
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
    return this.effectiveState(Date.now());
  }

  /** The shared state with the counts behind it, as of this replica's last answer from Redis (local ones while Redis is down). */
  stats(): CircuitBreakerStats {
    if (!this.storeUp) return this.standIn.breaker.stats();
    const now = Date.now();
    const state = this.effectiveState(now);
    const shared = this.shared;
    const calls = shared?.calls ?? 0;
    const failures = shared?.failures ?? 0;
    const slowCalls = shared?.slowCalls ?? 0;
    return {
      state,
      calls,
      failures,
      slowCalls,
      failureRate: calls === 0 ? 0 : failures / calls,
      slowCallRate: calls === 0 ? 0 : slowCalls / calls,
      consecutiveFailures: shared?.consecutiveFailures ?? 0,
      consecutiveOpens: shared?.consecutiveOpens ?? 0,
      openedAt: this.openedAt,
      retryAfter: state === 'open' ? this.retryAt - now : state === 'isolated' ? Infinity : 0,
      trialsInFlight: state === 'half-open' ? (shared?.trials ?? 0) : 0,
      trialSuccesses: state === 'half-open' ? (shared?.trialSuccesses ?? 0) : 0,
    };
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof RedisCircuitBreakerEvents>(event: K, listener: Listener<RedisCircuitBreakerEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** Opens the circuit for the whole fleet until {@link RedisCircuitBreaker.reset}; resolves once Redis has it. */
  isolate(): Promise<void> {
    return this.manual('isolated');
  }

  /** Closes the circuit for the whole fleet and forgets its failures, window and openings; resolves once Redis has it. */
  reset(): Promise<void> {
    return this.manual('closed');
  }

  /**
   * Reports the outcomes not yet reported, stops listening for changes and arms no timer again.
   * Calls made after it are decided by the local stand-in alone. Resolves when that is done
   * (a failed report is dropped: the fleet goes on without it).
   */
  async close(): Promise<void> {
    const first = !this.detached;
    this.detached = true;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    if (first && this.up && this.batch.calls > 0) await this.ask('sync', this.batch.take()).then(noop, noop);
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.().catch(noop);
  }

  protected override enter(call: LayerCall): unknown {
    // The happy path: closed, the view kept fresh by pushes, nothing to time.
    if (this.viewState === 'closed' && this.pushing && this.up && this.batch.untimed) return this.gen;
    return this.enterSlowly(call);
  }

  private enterSlowly(call: LayerCall): unknown {
    if (!this.up || this.detached) return this.waitLocally(call);
    const now = Date.now();
    if (this.shared === undefined || !(this.pushing || now - this.viewAt < 2 * this.settings.syncInterval)) {
      // A cold replica, or a view nobody refreshed lately: the call waits for the shared state.
      call.trackWork();
      const waiting: Waiting = { admission: NOT_YET, done: false };
      waiting.admission = call.wait(leave, waiting);
      this.viewWaiters.push(waiting);
      this.flush();
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
    return this.batch.untimed ? this.gen : { gen: this.gen, lease: undefined, startedAt: Date.now(), abandoned: false };
  }

  /** What the view says of a call now: run it, refuse it, or ask for a trial lease. */
  private decide(now: number): typeof CLOSED | typeof TRIAL | CircuitOpenError {
    switch (this.effectiveState(now)) {
      case 'closed':
        return CLOSED;
      case 'open':
        return this.refusal(this.retryAt - now, 'open');
      case 'half-open':
        if (now < this.trialsFullUntil || this.trialsAsked + this.leases >= this.settings.halfOpenMaxCalls) return this.refusal(0, 'half-open');
        return TRIAL;
      default:
        return this.refusal(Infinity, 'isolated');
    }
  }

  /** The view's state now: an open circuit whose break has ended is half-open (announced once). */
  private effectiveState(now: number): CircuitState {
    if (this.viewState !== 'open' || now < this.retryAt) return this.viewState;
    if (this.halfOpenAnnounced !== this.gen) {
      this.halfOpenAnnounced = this.gen;
      this.announce('open', 'half-open', 'recovery-timeout');
    }
    return 'half-open';
  }

  private refusal(retryAfter: number, state: 'open' | 'half-open' | 'isolated'): CircuitOpenError {
    const error = withoutStack(() => new CircuitOpenError(Math.max(0, retryAfter), state));
    if (this.events.has('rejected')) this.events.emit('rejected', { error });
    return error;
  }

  private askForTrial(waiting: Waiting): void {
    this.trialsAsked++;
    const lease = `${this.replica}.${(this.leases + this.trialsAsked).toString(36)}.${Date.now().toString(36)}`;
    this.ask('trial', [lease]).then(
      (answer) => {
        this.trialsAsked--;
        if (answer.granted === 1) {
          if (waiting.done) {
            void this.ask('done', [String(answer.gen), lease, 'a']).catch(noop);
            return;
          }
          this.leases++;
          waiting.done = true;
          waiting.admission.grant({ gen: answer.gen, lease, startedAt: Date.now(), abandoned: false } satisfies SharedToken);
          return;
        }
        if (waiting.done) return;
        waiting.done = true;
        if (answer.granted === 2) {
          waiting.admission.grant(this.closedToken());
          return;
        }
        if (answer.state === 'half-open') this.trialsFullUntil = Date.now() + this.settings.syncInterval;
        const now = Date.now();
        const state = this.effectiveState(now);
        waiting.admission.refuse(
          state === 'open' ? this.refusal(this.retryAt - now, 'open') : state === 'isolated' ? this.refusal(Infinity, 'isolated') : this.refusal(0, 'half-open'),
        );
      },
      () => {
        this.trialsAsked--;
        if (!waiting.done) this.standIn.decide(waiting, this.rejectedLocally);
      },
    );
  }

  private readonly rejectedLocally = (error: CircuitOpenError): void => {
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
    this.counted(token as Token, failed, failed ? undefined : value, failed);
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
    if ('settle' in given) {
      given.settle();
    } else if (given.lease !== undefined) {
      this.leases--;
      void this.ask('done', [String(given.gen), given.lease, 'a']).catch(noop);
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
        token.outcome(failed);
        this.told(failed, error, isResult, this.standIn.breaker.state);
        return;
      }
      const limit = this.settings.slowCallDuration;
      slow = limit !== undefined && Date.now() - token.startedAt > limit;
      if (token.lease !== undefined) {
        this.leases--;
        this.told(failed, error, isResult, 'half-open');
        void this.ask('done', [String(token.gen), token.lease, failed ? 'f' : slow ? 'w' : 's']).catch(noop);
        return;
      }
    }
    const gen = typeof token === 'number' ? token : token.gen;
    if (gen !== this.gen) return; // admitted before a change: stale news
    this.told(failed, error, isResult, this.viewState);
    // A success with no failure to reset and no window to fill is no news: reported later, it
    // would reset failures other replicas reported after it happened.
    if (failed || slow || !this.batch.noNews(this.shared)) {
      if (this.batch.record(failed, slow, this.gen, this.shared)) {
        this.flush();
        return;
      }
    } else if (this.pushing) {
      return;
    }
    // Without pushes the reports are also how this replica hears of changes: one per interval while it has calls.
    if (this.flushTimer === undefined) this.scheduleFlush();
  }

  private told(failed: boolean, error: unknown, isResult: boolean, state: CircuitState): void {
    const events = this.events;
    if (!failed) {
      if (events.has('success')) events.emit('success', { state });
    } else if (events.has('failure')) {
      const consecutiveFailures = this.batch.consecutiveFailures(this.shared);
      events.emit('failure', isResult ? { error: undefined, state, consecutiveFailures, value: error } : { error, state, consecutiveFailures });
    }
  }

  private scheduleFlush(): void {
    if (this.detached) return;
    const timer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, this.settings.syncInterval);
    (timer as { unref?: () => void }).unref?.();
    this.flushTimer = timer;
  }

  /** One report of the batch (also a read of the state: its answer is the state after it). */
  private flush(): void {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushing = true;
    this.ask('sync', this.batch.take()).then(
      () => {
        this.flushing = false;
        this.serveViewWaiters();
        if (this.flushAgain) {
          this.flushAgain = false;
          if (this.batch.couldOpen(this.shared)) this.flush();
          else if (this.flushTimer === undefined) this.scheduleFlush();
        }
      },
      () => {
        this.flushing = false;
        this.flushAgain = false;
        for (const waiting of this.viewWaiters.splice(0)) if (!waiting.done) this.standIn.decide(waiting, this.rejectedLocally);
      },
    );
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
      waiting.done = true;
      if (decision === CLOSED) waiting.admission.grant(this.closedToken());
      else waiting.admission.refuse(decision);
    }
  }

  /** Runs the script; its answer updates the view. A failure marks the store down and rejects. */
  private ask(op: string, extra: readonly string[]): Promise<SharedState> {
    const args = [op, ...this.settings.scriptArgs];
    args[8] = String(this.breakDuration((this.shared?.consecutiveOpens ?? 0) + 1));
    args.push(...extra);
    const sentAt = Date.now();
    return runScript(this.runner, BREAKER_SCRIPT, this.keys, args, this.settings.timeout, 'RedisCircuitBreaker').then(
      (answer) => {
        const state = parseAnswer(answer);
        this.apply(state, sentAt);
        return state;
      },
      (error: RedisStoreError) => {
        this.storeFailed(error, true);
        throw error;
      },
    );
  }

  /** Takes an answer as the view, announcing a change of state. */
  private apply(answer: SharedState, sentAt: number): void {
    const receivedAt = Date.now();
    if (this.pushLiveSince !== undefined && sentAt >= this.pushLiveSince) this.pushing = true;
    this.offset = answer.now - (sentAt + receivedAt) / 2;
    if (!this.up && !this.detached) {
      this.up = true;
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
      const from = this.standIn.breaker.state;
      this.events.emit('storeUp', {});
      this.view(answer, receivedAt, from);
      return;
    }
    if (answer.gen < this.gen) return; // older than a change already pushed
    this.view(answer, receivedAt, this.shared === undefined ? answer.state : this.effectiveState(receivedAt));
  }

  private view(answer: SharedState, at: number, from: CircuitState): void {
    const changed = answer.gen !== this.gen;
    this.shared = answer;
    this.viewAt = at;
    this.gen = answer.gen;
    this.viewState = answer.state;
    this.retryAt = answer.retryAt - this.offset;
    this.openedAt = answer.openedAt === undefined ? undefined : answer.openedAt - this.offset;
    this.reason = (answer.reason === '' ? 'restored' : answer.reason) as CircuitStateChangeReason;
    if (changed) this.trialsFullUntil = 0;
    const to = this.effectiveState(at);
    if (from !== to) this.announce(from, to, this.reason);
  }

  /** A change another replica made (`gen state retryAt reason`). */
  private pushed(text: string): void {
    const [gen, state, retryAt, reason, opens, openedAt] = text.split(' ');
    const shared = this.shared;
    if (shared === undefined || !this.up || Number(gen) <= this.gen) return;
    const now = Date.now();
    const from = this.effectiveState(now);
    const closed = state === 'closed';
    this.view(
      {
        ...shared,
        gen: Number(gen),
        state: state as SharedState['state'],
        retryAt: Number(retryAt),
        now: now + this.offset,
        reason: reason ?? '',
        consecutiveFailures: closed ? 0 : shared.consecutiveFailures,
        calls: closed ? 0 : shared.calls,
        failures: closed ? 0 : shared.failures,
        slowCalls: closed ? 0 : shared.slowCalls,
        consecutiveOpens: Number(opens),
        trials: 0,
        trialSuccesses: 0,
        openedAt: closed || Number(openedAt) < 0 ? undefined : Number(openedAt),
      },
      now,
      from,
    );
  }

  private announce(from: CircuitState, to: CircuitState, reason: CircuitStateChangeReason): void {
    if (this.events.has('stateChange')) this.events.emit('stateChange', { from, to, reason });
  }

  /** Redis failed: emit, and while it is down decide locally from the last shared state seen. */
  private storeFailed(error: RedisStoreError, down: boolean): void {
    if (this.events.has('storeError')) this.events.emit('storeError', { error });
    if (!down || !this.up || this.detached) return;
    this.up = false;
    this.pushing = false;
    this.batch.take();
    this.standIn.adopt(this.shared === undefined ? undefined : { state: this.effectiveState(Date.now()), retryAt: this.retryAt, openedAt: this.openedAt, shared: this.shared });
    this.events.emit('storeDown', { error });
    this.probeTimer = setInterval(() => void this.ask('sync', this.batch.take()).catch(noop), this.settings.probeInterval);
    (this.probeTimer as { unref?: () => void }).unref?.();
  }

  private async manual(to: 'isolated' | 'closed'): Promise<void> {
    const now = Date.now();
    const from = this.storeUp ? this.effectiveState(now) : this.standIn.breaker.state;
    this.standIn.manual(to);
    if (this.storeUp) {
      this.viewState = to;
      this.trialsFullUntil = 0;
      if (from !== to) this.announce(from, to, 'manual');
      await this.ask(to === 'isolated' ? 'isolate' : 'reset', []);
    }
  }

  /** The break duration of the `opens`-th opening in a row (the script opens the circuit with it). */
  private breakDuration(opens: number): number {
    const recovery = this.settings.recoveryTimeout;
    if (typeof recovery === 'number') return recovery;
    if (this.breakMemo[0] === opens) return this.breakMemo[1];
    let duration = 30_000;
    try {
      const given: unknown = recovery(opens);
      if (typeof given === 'number' && given >= 0) duration = Math.min(given, 2 ** 31 - 1);
      else throw new RangeError(`RedisCircuitBreaker recoveryTimeout(${opens}) must return a duration in ms ≥ 0, got ${String(given)}`);
    } catch (error) {
      reportUncaught('bulwark: RedisCircuitBreaker recoveryTimeout failed; the circuit stays open 30000 ms instead', error);
    }
    this.breakMemo = [opens, duration];
    return duration;
  }

  protected describe(): PolicyDescription {
    return {
      kind: 'circuit-breaker',
      label: 'shared circuit breaker',
      name: this.name,
      refuses: true,
      counters: REDIS_BREAKER_COUNTERS,
      gauges: REDIS_BREAKER_GAUGES,
      logs: REDIS_BREAKER_LOGS,
      readGauges: () => {
        const stats = this.stats();
        return { state: stats.state, failureRate: stats.failureRate, slowCallRate: stats.slowCallRate, redisStoreUp: this.storeUp ? 1 : 0 };
      },
      on: (event, listener) => this.on(event as keyof RedisCircuitBreakerEvents, listener),
    };
  }
}

const CLOSED = Symbol('closed');
const TRIAL = Symbol('trial');
const NOT_YET: Admission = { grant() {}, refuse() {} };
const noop = (): void => {};

function leave(_reason: unknown, waiting: Waiting): void {
  waiting.done = true;
}

function storeError(what: string, cause: unknown): RedisStoreError {
  return new RedisStoreError(`RedisCircuitBreaker ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}
