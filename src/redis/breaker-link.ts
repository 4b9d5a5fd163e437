/**
 * A shared breaker replica's link to Redis: its reports (batched, one in flight at a time, at
 * most one per sync interval unless a batch could open the circuit), its subscription to pushed
 * changes, and the store's ups and downs (a probe per `probeInterval` while Redis is down).
 */
import type { Emitter } from '../shared/emitter.js';
import { reportUncaught } from '../shared/report.js';
import type { OutcomeBatch } from './breaker-batch.js';
import type { LocalStandIn } from './breaker-local.js';
import type { RedisCircuitBreakerEvents, SharedSettings } from './breaker-options.js';
import { BREAKER_SCRIPT, parseAnswer, type SharedState } from './breaker-script.js';
import type { SharedView } from './breaker-view.js';
import { RedisStoreError, runScript, type runnerOf } from './store.js';
import { listen } from './subscriber.js';

/** What the link tells its breaker: a report was answered (the view is fresh), or failed. */
export interface LinkListener {
  read(): void;
  readFailed(): void;
}

const noop = (): void => {};

export class BreakerLink {
  /** False while Redis is down (the local stand-in decides). */
  up = true;
  /** True once closed: nothing goes to Redis again. */
  detached = false;
  private flushTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private flushing = false;
  private flushAgain = false;
  private probeTimer: ReturnType<typeof setInterval> | undefined = undefined;
  private breakMemo: [opens: number, duration: number] = [0, 0];
  private unsubscribe: (() => Promise<void>) | undefined = undefined;
  /** Scripts sent and not yet answered: `close()` waits for them (a trial's outcome among them). */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly settings: SharedSettings,
    private readonly run: ReturnType<typeof runnerOf>,
    private readonly keys: string[],
    private readonly view: SharedView,
    private readonly batch: OutcomeBatch,
    private readonly standIn: LocalStandIn,
    private readonly events: Emitter<RedisCircuitBreakerEvents>,
    private readonly listener: LinkListener,
  ) {
    const subscriber = settings.subscriber;
    if (subscriber === undefined) return;
    listen('RedisCircuitBreaker', subscriber, keys[0] as string, {
      message: (text) => {
        if (this.up) view.pushed(text);
      },
      lost: () => {
        view.pushLiveSince = undefined;
        view.pushing = false;
      },
      resumed: () => {
        view.pushLiveSince = Date.now();
      },
    }).then(
      (unsubscribe) => {
        this.unsubscribe = unsubscribe;
        view.pushLiveSince = Date.now();
        if (this.detached) void this.close();
      },
      (error: unknown) => {
        const failure = new RedisStoreError(`RedisCircuitBreaker could not subscribe to its channel: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        if (this.events.has('storeError')) this.events.emit('storeError', { error: failure });
      },
    );
  }

  /** Reports the batch within one sync interval (nothing if a report is already due). */
  scheduleFlush(): void {
    if (this.detached || this.flushTimer !== undefined) return;
    const timer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, this.settings.syncInterval);
    (timer as { unref?: () => void }).unref?.();
    this.flushTimer = timer;
  }

  /** One report of the batch now (also a read of the state: its answer is the state after it). */
  flush(): void {
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
        this.listener.read();
        if (this.flushAgain) {
          this.flushAgain = false;
          if (this.batch.couldOpen(this.view.shared)) this.flush();
          else this.scheduleFlush();
        }
      },
      () => {
        this.flushing = false;
        this.flushAgain = false;
        this.listener.readFailed();
      },
    );
  }

  /** Runs the script; its answer updates the view. A failure marks the store down and rejects. */
  ask(op: string, extra: readonly string[]): Promise<SharedState> {
    const args = [op, ...this.settings.scriptArgs];
    args[8] = String(this.breakDuration((this.view.shared?.consecutiveOpens ?? 0) + 1));
    args.push(...extra);
    const sentAt = Date.now();
    const answered = runScript(this.run, BREAKER_SCRIPT, this.keys, args, this.settings.timeout, 'RedisCircuitBreaker').then(
      (answer) => {
        const state = parseAnswer(answer);
        if (!this.up && !this.detached) {
          this.up = true;
          clearInterval(this.probeTimer);
          this.probeTimer = undefined;
          const from = this.standIn.breaker.state;
          this.events.emit('storeUp', {});
          this.view.answered(state, sentAt, from);
        } else {
          this.view.answered(state, sentAt);
        }
        return state;
      },
      (error: RedisStoreError) => {
        this.storeFailed(error);
        throw error;
      },
    );
    this.inFlight.add(answered);
    const done = (): void => void this.inFlight.delete(answered);
    answered.then(done, done);
    return answered;
  }

  /** Reports the batch now and waits until Redis has it and every report sent before (nothing is sent while Redis is down or after close). */
  async report(): Promise<void> {
    if (this.up && !this.detached && this.batch.calls > 0) this.tell('sync', this.batch.take());
    // A report already on its way (one that could open the circuit is sent at once) counts too.
    await this.settled();
  }

  /** Resolves once every script sent so far has been answered (or has failed). */
  private settled(): Promise<unknown> {
    return Promise.all([...this.inFlight].map((sent) => sent.then(noop, noop)));
  }

  /** Asks without waiting for the answer (a trial's outcome, an abandoned lease): a failure only marks the store down. */
  tell(op: string, extra: readonly string[]): void {
    this.ask(op, extra).catch(noop);
  }

  /** Redis failed: emit, and while it is down decide locally from the last shared state seen. */
  private storeFailed(error: RedisStoreError): void {
    if (this.events.has('storeError')) this.events.emit('storeError', { error });
    if (!this.up || this.detached) return;
    this.up = false;
    this.view.pushing = false;
    this.batch.take();
    this.standIn.adopt(this.view.lastSeen(Date.now()));
    this.events.emit('storeDown', { error });
    const probe = setInterval(() => this.tell('sync', this.batch.take()), this.settings.probeInterval);
    (probe as { unref?: () => void }).unref?.();
    this.probeTimer = probe;
  }

  /** Reports what is pending, unsubscribes, and arms no timer again. */
  async close(): Promise<void> {
    const first = !this.detached;
    this.detached = true;
    // From now on the local stand-in decides, from the state last seen; no call takes the shared path.
    this.view.pushing = false;
    this.view.pushLiveSince = undefined;
    if (first && this.up) this.standIn.adopt(this.view.lastSeen(Date.now()));
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    if (first && this.up && this.batch.calls > 0) this.tell('sync', this.batch.take());
    // Every report already sent, a trial's outcome included, reaches Redis before the caller
    // may close its connection: a trial lost here would hold the fleet half-open.
    await this.settled();
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.().catch(noop);
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
}
