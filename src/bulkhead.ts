import { systemClock, type Clock } from './clock.js';
import { BulkheadRejectedError, refusal, type BulkheadRejectionReason } from './errors.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { SingleLayerPolicy, closeWorkTracker, openWorkTracker, whenSettled, type Call, type Frame, type Scope, type Waiter, type WorkTracker } from './policy.js';
import * as validate from './validate.js';

/** Options of {@link Bulkhead}. */
export interface BulkheadOptions {
  /** How many calls may run at once. Required. */
  maxConcurrent: number;
  /**
   * How many calls may wait, first in first out, for a slot; beyond that a call is rejected
   * at once. `Infinity`: no bound.
   * @default 0
   */
  maxQueue?: number | undefined;
  /**
   * How long, in ms, a call may wait in the queue before it is rejected.
   * @default Infinity (as long as it takes)
   */
  queueTimeout?: number | undefined;
  /**
   * The source of time.
   * @default systemClock
   */
  clock?: Clock | undefined;
  /** A name for logs and metrics. */
  name?: string | undefined;
}

/** Events of a {@link Bulkhead}. */
export interface BulkheadEvents {
  /** A call was refused: no slot and no queue place (`'full'`), or its wait passed `queueTimeout`. */
  rejected: { readonly error: BulkheadRejectedError; readonly reason: BulkheadRejectionReason };
}

/**
 * A call waiting in the queue: a node of a doubly linked list, so leaving from the middle is
 * O(1), and the waiter its call's abort ends. One object per queued call.
 */
class QueuedCall implements Waiter {
  readonly bulkhead: Bulkhead;
  readonly call: Call;
  readonly scope: Scope;
  /** The bulkhead's place in the stack: the call goes on from the layer below it. */
  readonly index: number;
  resolve: (granted: QueuedCall) => void = ignore;
  rejectWait: (reason: unknown) => void = ignore;
  /** The `queueTimeout` timer, if any. */
  timer: unknown = undefined;
  previous: QueuedCall | undefined = undefined;
  next: QueuedCall | undefined = undefined;
  previousWaiter: Waiter | undefined = undefined;
  nextWaiter: Waiter | undefined = undefined;
  registered = false;

  constructor(bulkhead: Bulkhead, call: Call, scope: Scope, index: number) {
    this.bulkhead = bulkhead;
    this.call = call;
    this.scope = scope;
    this.index = index;
  }

  /**
   * A slot is free for it. Resolving (rather than running the call from here) keeps the queued
   * call in its own caller's async context: AsyncLocalStorage follows the await, not the
   * releasing call. It resolves with itself, so one function shared by every queued call runs
   * it ({@link runGranted}), and none holds a closure while it waits.
   */
  grant(): void {
    this.bulkhead.stopQueueTimer(this);
    this.call.removeWaiter(this);
    this.resolve(this);
  }

  /** Its call was aborted while it waited. */
  reject(reason: unknown): void {
    this.bulkhead.stopQueueTimer(this);
    this.bulkhead.leaveQueue(this);
    this.rejectWait(reason);
  }
}

function ignore(): void {}

const OPTION_KEYS: readonly (keyof BulkheadOptions)[] = ['maxConcurrent', 'maxQueue', 'queueTimeout', 'clock', 'name'];
const PEER_NAMES: validate.PeerNames = {
  concurrency: '"maxConcurrent"',
  limit: '"maxConcurrent"',
  maxConcurrentCalls: '"maxConcurrent"',
  permitLimit: '"maxConcurrent"',
  maxParallelization: '"maxConcurrent"',
  queueLimit: '"maxQueue"',
  maxQueuedActions: '"maxQueue"',
  maxQueuingActions: '"maxQueue"',
  maxWaitDuration: '"queueTimeout"',
};

/** Runs a queued call that was granted its slot. */
function runGranted(entry: QueuedCall): Promise<unknown> {
  return entry.bulkhead.runHolding(entry.call, entry.scope, entry.index);
}

/**
 * Limits how many calls run at once against one dependency, so a slow dependency cannot take
 * every socket, connection or worker of the service. Calls beyond `maxConcurrent` wait in a
 * FIFO queue of `maxQueue` places; beyond that they are rejected with
 * {@link BulkheadRejectedError} at once.
 *
 * A slot is held until the function really settles, even when its caller was already answered
 * by a timeout or an abort: the limit counts work in flight, not promises awaited.
 *
 * @example
 * ```ts
 * const inventory = new Bulkhead({ maxConcurrent: 10, maxQueue: 50, queueTimeout: 1_000 });
 * const stock = await inventory.execute(({ signal }) => fetch(stockUrl, { signal }));
 * ```
 */
export class Bulkhead extends SingleLayerPolicy {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly queueTimeout: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  /** @internal */
  readonly abortsWork = false;
  private readonly clock: Clock;
  private readonly events = new Emitter<BulkheadEvents>(['rejected']);
  private running = 0;
  private waiting = 0;
  private head: QueuedCall | undefined = undefined;
  private tail: QueuedCall | undefined = undefined;

  constructor(options: BulkheadOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`new Bulkhead(options): options with maxConcurrent are required, got ${options === null ? 'null' : typeof options}`);
    }
    validate.options('Bulkhead', options, OPTION_KEYS, PEER_NAMES);
    if (options.maxConcurrent === undefined) throw new TypeError('new Bulkhead(options): maxConcurrent is required');
    this.maxConcurrent = validate.count('Bulkhead maxConcurrent', options.maxConcurrent, 1, true);
    this.maxQueue = options.maxQueue === undefined ? 0 : validate.count('Bulkhead maxQueue', options.maxQueue, 0, true);
    this.queueTimeout = options.queueTimeout === undefined ? Infinity : validate.duration('Bulkhead queueTimeout', options.queueTimeout, true);
    this.clock = options.clock === undefined ? systemClock : validate.clock('Bulkhead clock', options.clock);
    this.name = options.name === undefined ? undefined : validate.text('Bulkhead name', options.name);
  }

  /** How many calls hold a slot now (their work has not settled yet). */
  get active(): number {
    return this.running;
  }

  /** How many calls wait in the queue now. */
  get queued(): number {
    return this.waiting;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof BulkheadEvents>(event: K, listener: Listener<BulkheadEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** @internal */
  enter(call: Call, scope: Scope, frame: Frame, slot: number): Scope | undefined {
    if (this.running >= this.maxConcurrent) return undefined; // wait or be refused: run() decides
    this.running++;
    // Nothing can answer the caller early, so the inner promise settles with the work itself.
    if (!call.abortable) return scope;
    // An abort answers the caller while the function may still run: keep the slot until it settles.
    const tracker = openWorkTracker(this.releaseSlot);
    frame.keep(slot, tracker);
    return scope.openTracked(tracker);
  }

  /** @internal */
  leave(_call: Call, tracker: unknown): void {
    this.leaveSlot(tracker as WorkTracker | undefined);
  }

  /** @internal */
  leaveWithError(_call: Call, _index: number, tracker: unknown, error: unknown): never {
    this.leaveSlot(tracker as WorkTracker | undefined);
    throw error;
  }

  private leaveSlot(tracker: WorkTracker | undefined): void {
    if (tracker === undefined) this.releaseSlot();
    else closeWorkTracker(tracker);
  }

  /** @internal Runs a call that found no free slot (`enter` declined it): it queues, or is refused. */
  run(call: Call, scope: Scope, index: number): Promise<unknown> {
    if (this.waiting >= this.maxQueue) return Promise.reject(this.reject('full'));
    return this.enqueue(call, scope, index).then(runGranted);
  }

  /** @internal Runs the inner layers on a slot already taken, and gives the slot back when the work really ends. */
  runHolding(call: Call, scope: Scope, index: number): Promise<unknown> {
    // Nothing can answer the caller early, so the inner promise settles with the work itself.
    if (!call.abortable) return call.next(index + 1, scope).then(this.releaseWithValue, this.releaseWithError);
    // An abort answers the caller while the function may still run: keep the slot until it settles.
    const tracker = openWorkTracker(this.releaseSlot);
    return whenSettled(call.next(index + 1, scope.openTracked(tracker)), () => closeWorkTracker(tracker));
  }

  /** The work on a granted slot settled: frees the slot, and passes the outcome on (one pair of functions per bulkhead, none per call). */
  private readonly releaseWithValue = (value: unknown): unknown => {
    this.releaseSlot();
    return value;
  };

  private readonly releaseWithError = (error: unknown): never => {
    this.releaseSlot();
    throw error;
  };

  /** Frees a slot: hands it straight to the first queued call (no barging), or counts it free. */
  private readonly releaseSlot = (): void => {
    const first = this.head;
    if (first === undefined) {
      this.running--;
      return;
    }
    this.unlink(first);
    first.grant();
  };

  private enqueue(call: Call, scope: Scope, index: number): Promise<QueuedCall> {
    if (scope.isAborted()) return Promise.reject(scope.abortReason());
    const entry = new QueuedCall(this, call, scope, index);
    const wait = new Promise<QueuedCall>((resolve, reject) => {
      entry.resolve = resolve;
      entry.rejectWait = reject;
    });
    // Nothing can abort a call with no caller signal and no timeout: no waiter to register.
    if (call.abortable) call.register(entry);
    entry.previous = this.tail;
    if (this.tail === undefined) this.head = entry;
    else this.tail.next = entry;
    this.tail = entry;
    this.waiting++;
    if (this.queueTimeout !== Infinity) {
      entry.timer = this.clock.setTimeout(() => {
        entry.timer = undefined;
        call.removeWaiter(entry);
        this.unlink(entry);
        entry.rejectWait(this.reject('queue-timeout'));
      }, this.queueTimeout);
    }
    return wait;
  }

  /** @internal */
  stopQueueTimer(entry: QueuedCall): void {
    if (entry.timer === undefined) return;
    this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  /** @internal */
  leaveQueue(entry: QueuedCall): void {
    this.unlink(entry);
  }

  private unlink(entry: QueuedCall): void {
    if (entry.previous === undefined) {
      if (this.head !== entry) return; // already left
      this.head = entry.next;
    } else {
      entry.previous.next = entry.next;
    }
    if (entry.next === undefined) this.tail = entry.previous;
    else entry.next.previous = entry.previous;
    entry.previous = undefined;
    entry.next = undefined;
    this.waiting--;
  }

  private reject(reason: BulkheadRejectionReason): BulkheadRejectedError {
    const error = refusal(() => new BulkheadRejectedError(reason, this.maxConcurrent, this.maxQueue));
    if (this.events.has('rejected')) this.events.emit('rejected', { error, reason });
    return error;
  }
}
