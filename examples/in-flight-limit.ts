/**
 * A policy of your own, written only against what `import … from 'bulwark'` exports: a limit on
 * the calls in flight per key (per tenant, per host). docs/extending.md walks through it;
 * examples/in-flight-limit.test.ts shows it with the five built-ins and in every exporter.
 */
import {
  LayerPolicy,
  ResilienceError,
  refusal,
  type CounterDescription,
  type ExecuteOptions,
  type ExecutionContext,
  type GaugeDescription,
  type LayerCall,
  type Listener,
  type LogDescription,
  type PolicyDescription,
  type Unsubscribe,
} from 'bulwark';

/** Options of {@link InFlightLimit}. */
export interface InFlightLimitOptions {
  /** How many calls of one key may be in flight at once: a whole number ≥ 1, or `Infinity`. Required. */
  maxPerKey: number;
  /** A name for logs and metrics; the policy of key `k` goes by `<name>:<k>`. */
  name?: string | undefined;
}

/** Events of an {@link InFlightLimit}, and of each of its policies for its own key. */
export interface InFlightLimitEvents {
  /** A call was refused: its key had `maxPerKey` calls in flight. */
  rejected: { readonly key: string; readonly error: InFlightLimitError };
  /** A call took the last place of its key: the key's next calls are refused until one settles. */
  saturated: { readonly key: string; readonly maxPerKey: number };
}

/** An {@link InFlightLimit} refused the call: a refusal, which breakers do not count and retries do not repeat. */
export class InFlightLimitError extends ResilienceError {
  override readonly name = 'InFlightLimitError' as const;
  readonly key: string;
  readonly maxPerKey: number;

  constructor(key: string, maxPerKey: number) {
    super(`${maxPerKey} ${maxPerKey === 1 ? 'call' : 'calls'} already in flight for key ${JSON.stringify(key)}`);
    this.key = key;
    this.maxPerKey = maxPerKey;
  }
}
// Branded once, on the prototype: every InFlightLimitError is a refusal, at no cost per error.
refusal(InFlightLimitError.prototype);

/**
 * Limits how many calls run at once per key: per tenant, so one tenant's burst cannot take the
 * whole capacity of a dependency, or per host. Beyond `maxPerKey`, a call is refused at once
 * with {@link InFlightLimitError}. A place is held until the function really settles, even
 * when a timeout or the caller's abort answered the caller first: the limit counts work in
 * flight, not promises awaited. Only keys with a call in flight take memory.
 *
 * **How the key is chosen: `forKey(key)` returns the policy of that key.** A policy sees a call
 * through `LayerCall`, which carries nothing the caller chose: no argument of `execute`
 * reaches `enter`. A `key: () => …` option would have to read ambient state, and a variable
 * set around `execute` is wrong as soon as `enter` runs after an await (every attempt of a
 * retry after the first, a call let in from a bulkhead queue); AsyncLocalStorage would work,
 * but not in browsers. A policy per key carries its key, is right on every attempt and in
 * every runtime, and costs a few small objects; the places of every key live in the limit,
 * shared by all its policies. The price: a stack per key (built once per host, or composed per
 * request for tenants, which is cheap), and metrics per key (see docs/extending.md).
 *
 * @example
 * ```ts
 * const tenants = new InFlightLimit({ maxPerKey: 4, name: 'tenants' });
 * const outer = compose(withFallback(busy), new CircuitBreaker(), retryWithBackoff(), withTimeout(2_000));
 * const backend = new Bulkhead({ maxConcurrent: 50 });
 * // per request: a nested compose behaves as the flat one and shares the policies (and their metrics)
 * const report = await compose(outer, tenants.forKey(tenantId), backend).execute(({ signal }) => api.report(tenantId, { signal }));
 * ```
 */
export class InFlightLimit {
  readonly maxPerKey: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  readonly #places: Places;

  constructor(options: InFlightLimitOptions) {
    const { maxPerKey, name } = checkOptions(options);
    this.maxPerKey = maxPerKey;
    this.name = name;
    this.#places = new Places(maxPerKey);
  }

  /** The policy of `key`, to compose into a stack. Policies of one key share its places. */
  forKey(key: string): InFlightLimitPolicy {
    if (typeof key !== 'string') throw new TypeError(`InFlightLimit forKey(key): key must be a string, got ${show(key)}`);
    return new InFlightLimitPolicy(this.#places, key, this.name === undefined ? undefined : `${this.name}:${key}`);
  }

  /** Runs `fn` under the limit of `key`; a bad key rejects, as a refusal would. */
  execute<T>(key: string, fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T> {
    try {
      return this.forKey(key).execute(fn, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Calls of `key` in flight now. */
  inFlight(key: string): number {
    return this.#places.held(key);
  }

  /** Calls in flight now, summed over every key. */
  get total(): number {
    return this.#places.total;
  }

  /** Keys with a call in flight now: the only ones the limit keeps an entry for. */
  get size(): number {
    return this.#places.counts.size;
  }

  /** Subscribes to an event of any key; returns the function that unsubscribes. */
  on<K extends keyof InFlightLimitEvents>(event: K, listener: Listener<InFlightLimitEvents[K]>): Unsubscribe {
    return this.#places.events.on(event, listener, undefined);
  }
}

/** The limit of one key, made by {@link InFlightLimit.forKey}: a bulwark policy. */
export class InFlightLimitPolicy extends LayerPolicy<void> {
  readonly key: string;
  /** `<limit name>:<key>`, when the limit has a name. */
  readonly name: string | undefined;
  readonly #places: Places;

  /** @internal Made by `forKey`. */
  constructor(places: Places, key: string, name: string | undefined) {
    super();
    this.#places = places;
    this.key = key;
    this.name = name;
  }

  /** Subscribes to an event of this key; returns the function that unsubscribes. */
  on<K extends keyof InFlightLimitEvents>(event: K, listener: Listener<InFlightLimitEvents[K]>): Unsubscribe {
    return this.#places.events.on(event, listener, this.key);
  }

  /** Takes a place of the key, or refuses; the place is held until the work inside has really ended. */
  protected override enter(call: LayerCall): void {
    this.#places.take(this.key);
    call.trackWork();
  }

  protected override released(): void {
    this.#places.give(this.key);
  }

  protected describe(): PolicyDescription {
    return {
      kind: 'in-flight-limit',
      label: 'in-flight limit',
      name: this.name,
      refuses: true, // exporters write its `rejections` (the engine counts them for every policy)
      counters: COUNTERS,
      gauges: GAUGES,
      logs: LOGS,
      // Read at every snapshot; subscribed to by counters and logs, for this key's events only.
      readGauges: () => ({ inFlight: this.#places.held(this.key) }),
      on: (event, listener) => this.on(event as keyof InFlightLimitEvents, listener),
    };
  }
}

/** The places of every key of one limit: an entry only for a key with a call in flight. */
class Places {
  readonly counts = new Map<string, number>();
  readonly events = new Events();
  total = 0;

  constructor(readonly maxPerKey: number) {}

  held(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  take(key: string): void {
    const held = this.held(key);
    if (held >= this.maxPerKey) {
      const error = withoutStack(() => new InFlightLimitError(key, this.maxPerKey));
      if (this.events.has('rejected')) this.events.emit('rejected', { key, error });
      throw error;
    }
    this.counts.set(key, held + 1);
    this.total++;
    if (held + 1 === this.maxPerKey && this.events.has('saturated')) this.events.emit('saturated', { key, maxPerKey: this.maxPerKey });
  }

  /** Gives a place back; the key's entry goes with its last place. */
  give(key: string): void {
    const held = this.held(key);
    if (held > 1) this.counts.set(key, held - 1);
    else if (!this.counts.delete(key)) return;
    this.total--;
  }
}

// What observability reads (see describe()): one gauge, one counter, two kinds of log line.
const GAUGES: readonly GaugeDescription[] = [
  { field: 'inFlight', prometheus: 'in_flight_limit_active_calls', otel: 'bulwark.in_flight_limit.call.active', unit: '{call}', type: 'count',
    description: 'Calls holding a place of the in-flight limit for its key now (until their work really settles).' },
];
const COUNTERS: readonly CounterDescription[] = [
  { field: 'saturations', event: 'saturated', unit: '{saturation}', description: 'Times a key of the in-flight limit took its last place, so its next calls were refused until one settled.' },
];
type Rejected = InFlightLimitEvents['rejected'];
type Saturated = InFlightLimitEvents['saturated'];
const LOGS: readonly LogDescription[] = [
  { event: 'rejected', level: 'warn', perCall: true, plural: 'rejections',
    message: ({ error }: Rejected, label: string) => `${label} rejected a call: ${error.message}`,
    fields: ({ key, error }: Rejected) => ({ key, maxPerKey: error.maxPerKey, error: { name: error.name, message: error.message } }) },
  { event: 'saturated', level: 'off', perCall: true, plural: 'saturations',
    message: ({ key, maxPerKey }: Saturated, label: string) => `${label}: key ${JSON.stringify(key)} took its last place of ${maxPerKey}`,
    fields: ({ key, maxPerKey }: Saturated) => ({ key, maxPerKey }) },
];

// ── What bulwark does for its own policies but does not export: rewritten here ──────────────

const KNOWN_OPTIONS: readonly string[] = ['maxPerKey', 'name'];
/** Other libraries' names for `maxPerKey` (p-limit, Bulkhead, …), named in the error. */
const PEER_NAMES: Readonly<Record<string, string>> = { concurrency: 'maxPerKey', limit: 'maxPerKey', max: 'maxPerKey', maxConcurrent: 'maxPerKey' };

function checkOptions(options: unknown): { maxPerKey: number; name: string | undefined } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`new InFlightLimit(options): options with maxPerKey are required, got ${show(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (KNOWN_OPTIONS.includes(key)) continue;
    const peer = Object.hasOwn(PEER_NAMES, key) ? ` (another library's name: this one's is "${PEER_NAMES[key]}")` : '';
    throw new TypeError(`InFlightLimit has no option ${JSON.stringify(key)}${peer}; known options: ${KNOWN_OPTIONS.map((k) => JSON.stringify(k)).join(', ')}`);
  }
  const { maxPerKey, name } = options as Partial<Record<keyof InFlightLimitOptions, unknown>>;
  if (maxPerKey === undefined) throw new TypeError('new InFlightLimit(options): maxPerKey is required');
  if (typeof maxPerKey !== 'number') throw new TypeError(`InFlightLimit maxPerKey must be a number, got ${show(maxPerKey)}`);
  if (maxPerKey !== Infinity && !(Number.isInteger(maxPerKey) && maxPerKey >= 1)) {
    throw new RangeError(`InFlightLimit maxPerKey must be a whole number ≥ 1 or Infinity, got ${show(maxPerKey)}`);
  }
  if (name !== undefined && typeof name !== 'string') throw new TypeError(`InFlightLimit name must be a string, got ${show(name)}`);
  if (name === '') throw new RangeError('InFlightLimit name must not be empty');
  return { maxPerKey, name };
}

/** Names a value in an error message without printing an object's contents. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value !== 'object' || value === null) return typeof value === 'function' ? 'a function' : String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** Builds a refusal without a stack trace, as bulwark does: under overload a stack costs more than the rest of the refusal. */
function withoutStack<E extends Error>(build: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let error: E;
  try {
    error = build();
  } finally {
    Error.stackTraceLimit = limit;
  }
  // JavaScriptCore (Bun) writes no stack at all then; a logger's `error.stack.split()` must not throw.
  if (typeof error.stack !== 'string') Object.defineProperty(error, 'stack', { value: `${error.name}: ${error.message}`, writable: true, configurable: true });
  return error;
}

type AnyListener = (payload: InFlightLimitEvents[keyof InFlightLimitEvents]) => unknown;

/**
 * The events of one limit. Lists are replaced, never changed, so a listener that unsubscribes
 * during an emit disturbs no other. A listener that throws, or whose promise rejects, is
 * reported and never reaches the call.
 */
class Events {
  readonly #known: readonly (keyof InFlightLimitEvents)[] = ['rejected', 'saturated'];
  readonly #listeners = new Map<keyof InFlightLimitEvents, readonly AnyListener[]>();

  has(event: keyof InFlightLimitEvents): boolean {
    return this.#listeners.has(event);
  }

  /** Subscribes `listener` to `event`, for the events of `key` only when one is given. */
  on<K extends keyof InFlightLimitEvents>(event: K, listener: Listener<InFlightLimitEvents[K]>, key: string | undefined): Unsubscribe {
    if (!this.#known.includes(event)) throw new TypeError(`Unknown event ${show(event)}: expected one of ${this.#known.map((name) => JSON.stringify(name)).join(', ')}`);
    if (typeof listener !== 'function') throw new TypeError(`The listener for ${JSON.stringify(event)} must be a function, got ${show(listener)}`);
    // Its own identity, so one function may subscribe twice and unsubscribe once.
    const entry: AnyListener = (payload) => (key === undefined || payload.key === key ? listener(payload as InFlightLimitEvents[K]) : undefined);
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), entry]);
    return () => {
      const remaining = (this.#listeners.get(event) ?? []).filter((other) => other !== entry);
      if (remaining.length === 0) this.#listeners.delete(event);
      else this.#listeners.set(event, remaining);
    };
  }

  emit<K extends keyof InFlightLimitEvents>(event: K, payload: InFlightLimitEvents[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        const returned = listener(payload) as PromiseLike<unknown> | undefined; // an async listener's promise is watched
        if (typeof returned?.then === 'function') returned.then(undefined, (error: unknown) => reportListenerError(event, error));
      } catch (error) {
        reportListenerError(event, error);
      }
    }
  }
}

/** Reports a listener's error as bulwark reports its own listeners': `reportError` where the runtime has it, else `console.error`. */
function reportListenerError(event: string, error: unknown): void {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
  if (typeof report === 'function') report(error);
  else console.error(`InFlightLimit: a "${event}" listener failed`, error);
}
