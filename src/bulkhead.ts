import type { Admission, LayerCall, LogDescription, PolicyDescription } from './engine/contract.js';
import { LayerPolicy } from './engine/policy.js';
import { BulkheadRejectedError, withoutStack, type BulkheadRejectionReason } from './errors.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { systemClock, type Clock } from './shared/clock.js';
import { List, type ListNode } from './shared/list.js';
import { BULKHEAD_GAUGES } from './shared/metric-catalog.js';
import * as validate from './shared/validate.js';

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
  /** A call was refused with `error`, for `reason`: no slot and no queue place (`'full'`), or its wait passed `queueTimeout` (`'queue-timeout'`). */
  rejected: { readonly error: BulkheadRejectedError; readonly reason: BulkheadRejectionReason };
}

/** A call waiting in the queue, a node of it (leaving from the middle is O(1)); its admission lets the call in. */
class QueuedCall implements ListNode<QueuedCall> {
  /** Set right after the call is made to wait (the wait needs this entry first, for its `onAbort`). */
  admission: Admission = NOT_YET_WAITING;
  /** The `queueTimeout` timer, if any. */
  timer: unknown = undefined;
  previous: QueuedCall | undefined = undefined;
  next: QueuedCall | undefined = undefined;
}

const NOT_YET_WAITING: Admission = { grant() {}, refuse() {} };

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
export class Bulkhead extends LayerPolicy<void> {
  /** The {@link BulkheadOptions.maxConcurrent | maxConcurrent} in force. */
  readonly maxConcurrent: number;
  /** The {@link BulkheadOptions.maxQueue | maxQueue} in force. */
  readonly maxQueue: number;
  /** The {@link BulkheadOptions.queueTimeout | queueTimeout} in force. */
  readonly queueTimeout: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly clock: Clock;
  private readonly events = new Emitter<BulkheadEvents>(['rejected']);
  private running = 0;
  /** The calls waiting for a slot, first in first out. */
  private readonly queue = new List<QueuedCall>();

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
    return this.queue.size;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof BulkheadEvents>(event: K, listener: Listener<BulkheadEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /**
   * Takes a free slot, or a queue place, or refuses. A slot is held until the work inside has
   * really ended (`released`), even after an abort answered the caller.
   */
  protected override enter(call: LayerCall): Admission | undefined {
    if (this.running < this.maxConcurrent) {
      this.running++;
      call.trackWork();
      return undefined;
    }
    if (this.queue.size >= this.maxQueue) throw this.reject('full');
    call.trackWork();
    const entry = new QueuedCall();
    entry.admission = call.wait(this.leaveQueue, entry);
    this.queue.push(entry);
    if (this.queueTimeout !== Infinity) {
      entry.timer = this.clock.setTimeout(() => {
        entry.timer = undefined;
        this.unlink(entry);
        entry.admission.refuse(this.reject('queue-timeout'));
      }, this.queueTimeout);
    }
    return entry.admission;
  }

  /** The work on a slot has ended: the slot goes straight to the first queued call (no barging), or is counted free. */
  protected override released(): void {
    const first = this.queue.head;
    if (first === undefined) {
      this.running--;
      return;
    }
    this.unlink(first);
    first.admission.grant();
  }

  protected describe(): PolicyDescription {
    return {
      kind: 'bulkhead',
      name: this.name,
      refuses: true,
      gauges: BULKHEAD_GAUGES,
      logs: BULKHEAD_LOGS,
      readGauges: () => ({ active: this.running, queued: this.queue.size }),
      on: (event, listener) => this.on(event as keyof BulkheadEvents, listener),
    };
  }

  /** A queued call was aborted: one function for all of them, told which by the wait's context. */
  private readonly leaveQueue = (_reason: unknown, entry: QueuedCall): void => this.unlink(entry);

  /** Takes a call off the queue (granted, timed out or aborted) and clears its timer; a call already off it is left alone. */
  private unlink(entry: QueuedCall): void {
    if (entry.timer !== undefined) {
      this.clock.clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    this.queue.remove(entry);
  }

  private reject(reason: BulkheadRejectionReason): BulkheadRejectedError {
    const error = withoutStack(() => new BulkheadRejectedError(reason, this.maxConcurrent, this.maxQueue));
    if (this.events.has('rejected')) this.events.emit('rejected', { error, reason });
    return error;
  }
}

const BULKHEAD_LOGS: readonly LogDescription[] = [
  {
    event: 'rejected',
    level: 'warn',
    perCall: true,
    plural: 'rejections',
    message: ({ error }: BulkheadEvents['rejected'], label: string) => `${label} rejected a call: ${error.message}`,
    fields: ({ error, reason }: BulkheadEvents['rejected']) => ({ reason, error: { name: error.name, message: error.message } }),
  },
];
