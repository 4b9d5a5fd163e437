import type { CircuitState } from '../circuit-breaker/types.js';
import type { Clock } from '../shared/clock.js';
import { isThenable, watchReturned } from '../shared/report.js';
import * as validate from './options.js';

/** The service as a whole: `'degraded'` still serves (a non-critical dependency is down or a check warns). */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/** One check's outcome, in the words of the IETF health-check draft. */
export type CheckStatus = 'pass' | 'warn' | 'fail';

/** Where the process stands in its life: not ready yet, serving, or shutting down. */
export type HealthPhase = 'starting' | 'ready' | 'draining';

/** Why {@link HealthMonitor.ready} answered `false`. */
export type NotReadyReason = 'starting' | 'draining' | 'unhealthy';

/** What a check function receives. */
export interface HealthCheckContext {
  /**
   * Aborted (with a `DOMException` named `"TimeoutError"`) when the check outlives its
   * timeout. Pass it on to the client you ping, so an abandoned probe frees its connection.
   */
  readonly signal: AbortSignal;
}

/**
 * A dependency check. It passes when it returns or resolves to anything but `false`; it fails
 * when it returns or resolves `false`, throws (also synchronously), rejects, or has not
 * settled when its timeout elapses.
 */
export type HealthCheck = (context: HealthCheckContext) => unknown;

/** Anything with a circuit breaker's `state`: a bulwark `CircuitBreaker`, or your own adapter. */
export interface CircuitBreakerLike {
  readonly state: CircuitState;
  /** Counters to show in a verbose report, when the breaker has them. */
  stats?(): unknown;
}

/** Options of {@link HealthMonitor}. */
export interface HealthMonitorOptions {
  /**
   * Longest time in ms a check may run, and the timeout of every check that sets none. A
   * check still running then fails and its signal is aborted, so a report never takes longer
   * than this (plus a turn of the event loop), whatever the checks do.
   * @default 5_000
   */
  timeout?: number | undefined;
  /**
   * How long in ms a report is reused before the checks run again. With `0`, every request
   * that arrives while a run is in flight still shares that run; none reuses a finished one.
   * @default 0
   */
  cacheTtl?: number | undefined;
  /**
   * The source of time for timeouts, durations and the cache.
   * @default a clock that reads `globalThis` at each call, so fake timers drive it
   */
  clock?: Clock | undefined;
}

/** Options of {@link HealthMonitor.addCheck}. */
export interface CheckOptions {
  /**
   * A failing critical check makes the service `unhealthy` (503, out of rotation) and not
   * ready; a failing non-critical one makes it `degraded` (still 200).
   * @default true
   */
  critical?: boolean | undefined;
  /**
   * Timeout of this check in ms; at most the monitor's `timeout`.
   * @default the monitor's `timeout`
   */
  timeout?: number | undefined;
}

/** Options of {@link HealthMonitor.addCircuitBreaker}. */
export interface CircuitBreakerCheckOptions {
  /**
   * Whether an open breaker takes the service out of rotation. Off by default: a dependency
   * behind a breaker usually has a fallback, so it should degrade the service, not stop it.
   * @default false
   */
  critical?: boolean | undefined;
}

/** How one check went. */
export interface CheckResult {
  readonly status: CheckStatus;
  /** How long the check took, in ms (0 for a circuit breaker, whose state is read, not probed). */
  readonly durationMs: number;
  /** Whether the check was registered as critical. */
  readonly critical: boolean;
  /** When the outcome was known, in epoch ms from the monitor's clock. */
  readonly checkedAt: number;
  /** What went wrong, as text (`warn` and `fail` only). May hold hostnames or credentials: keep it in-house. */
  readonly error?: string;
  /** What the check threw or rejected with, for your logs (never sent by the HTTP handlers). */
  readonly cause?: unknown;
  /** True when the check failed because it outlived its timeout. */
  readonly timedOut?: boolean;
  /** More about the check: a breaker's `state` (and `stats()` when it has one). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The result of {@link HealthMonitor.check}. */
export interface HealthReport {
  /** `'unhealthy'` when a critical check fails; `'degraded'` when another fails or any warns. */
  readonly status: HealthStatus;
  /** When the checks finished, in epoch ms from the monitor's clock (older than now when the report was cached). */
  readonly checkedAt: number;
  /** One entry per registered check, in registration order. */
  readonly checks: Readonly<Record<string, CheckResult>>;
}

/** The result of {@link HealthMonitor.ready}. */
export interface ReadinessReport {
  readonly ready: boolean;
  /** Why the process is not ready; absent when it is. */
  readonly reason?: NotReadyReason;
  /** The critical checks, when they ran (empty while starting or draining). */
  readonly checks: Readonly<Record<string, CheckResult>>;
}

/** The result of {@link HealthMonitor.live}. */
export interface LivenessReport {
  readonly alive: true;
}

type CheckEntry = {
  readonly kind: 'check';
  readonly name: string;
  readonly check: HealthCheck;
  readonly critical: boolean;
  readonly timeout: number;
};
type BreakerEntry = {
  readonly kind: 'breaker';
  readonly name: string;
  readonly breaker: CircuitBreakerLike;
  readonly critical: boolean;
};
type Entry = CheckEntry | BreakerEntry;

type Scope = 'all' | 'critical';

/** The results of one run of the check functions; breakers are read when a report is built. */
interface Outcome {
  /** The registry's generation the run started under: a cached outcome of an older one is stale. */
  readonly generation: number;
  /** The entries of the run, in registration order (breakers included). */
  readonly entries: readonly Entry[];
  readonly results: ReadonlyMap<string, CheckResult>;
  readonly checkedAt: number;
}

interface Run {
  readonly generation: number;
  readonly promise: Promise<Outcome>;
}

const MONITOR_OPTIONS: readonly (keyof HealthMonitorOptions)[] = ['timeout', 'cacheTtl', 'clock'];
const CHECK_OPTIONS: readonly (keyof CheckOptions)[] = ['critical', 'timeout'];
const BREAKER_OPTIONS: readonly (keyof CircuitBreakerCheckOptions)[] = ['critical'];

/** An error's text for a report: its message, else its name, else what `String` makes of it. */
function describe(error: unknown): string {
  try {
    if (typeof error === 'object' && error !== null) {
      const { message, name } = error as { message?: unknown; name?: unknown };
      if (typeof message === 'string' && message !== '') return message;
      if (typeof name === 'string' && name !== '') return name;
    }
    return String(error);
  } catch {
    return 'an error that cannot be printed';
  }
}

/**
 * Runs the dependency checks of a service and keeps its readiness, for Kubernetes probes and
 * load balancers. Serve it over HTTP with `nodeHealthHandler` or `fetchHealthHandler`.
 *
 * Checks run concurrently, each bounded by its timeout, so a report never waits for a check
 * that hangs. Requests that arrive while a run is in flight share it (`/health` and `/ready`
 * together call a check once), and with `cacheTtl` a recent report is reused, so probes from
 * many load balancers never stampede a database.
 * Circuit breakers are read when a report is built, never cached: a report always shows
 * their state of that moment.
 *
 * @example
 * ```ts
 * const health = new HealthMonitor({ timeout: 2_000, cacheTtl: 1_000 });
 * health.addCheck('database', ({ signal }) => db.ping({ signal }), { timeout: 500 });
 * health.addCircuitBreaker('payments', paymentsBreaker);
 * server.listen(8080, () => health.markReady());
 * ```
 */
export class HealthMonitor {
  /** Longest time in ms a check may run, and the default timeout of each check. */
  readonly timeout: number;
  /** How long in ms a report is reused. */
  readonly cacheTtl: number;
  private readonly clock: Clock;
  /** Registered checks by name, in registration order. */
  private readonly entries = new Map<string, Entry>();
  /** Bumped by every registration change, so no run or cached report of an older set is reused. */
  private generation = 0;
  private currentPhase: HealthPhase = 'starting';
  private readonly running: { all: Run | undefined; critical: Run | undefined } = { all: undefined, critical: undefined };
  private readonly cached: { all: Outcome | undefined; critical: Outcome | undefined } = { all: undefined, critical: undefined };
  /** Each check function's invocation in flight, shared by a full run and a readiness run that overlap. */
  private readonly checksInFlight = new Map<CheckEntry, Promise<CheckResult>>();

  constructor(options?: HealthMonitorOptions) {
    const opts = validate.options('HealthMonitor', options, MONITOR_OPTIONS);
    this.timeout = opts.timeout === undefined ? 5_000 : validate.positiveDuration('HealthMonitor timeout', opts.timeout);
    this.cacheTtl = opts.cacheTtl === undefined ? 0 : validate.duration('HealthMonitor cacheTtl', opts.cacheTtl);
    this.clock = opts.clock === undefined ? validate.defaultClock : validate.clock('HealthMonitor clock', opts.clock);
  }

  /**
   * Where the process stands: `'starting'` until {@link HealthMonitor.markReady},
   * `'ready'`, then `'draining'` from {@link HealthMonitor.drain} on.
   */
  get phase(): HealthPhase {
    return this.currentPhase;
  }

  /** The names of the registered checks and breakers, in registration order. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * Registers a dependency check, critical unless `{ critical: false }`. Its function gets a
   * `signal` that aborts at its timeout; it passes unless it returns or resolves `false`,
   * throws, rejects or times out.
   *
   * @example
   * ```ts
   * health.addCheck('database', ({ signal }) => db.ping({ signal }), { timeout: 500 });
   * health.addCheck('cache', () => redis.ping(), { critical: false });
   * ```
   */
  addCheck(name: string, check: HealthCheck, options?: CheckOptions): this {
    const label = this.checkName('addCheck', name);
    if (typeof check !== 'function') throw new TypeError(`HealthMonitor addCheck(${label}): check must be a function, got ${validate.show(check)}`);
    const opts = validate.options(`HealthMonitor addCheck(${label})`, options, CHECK_OPTIONS);
    const critical = opts.critical === undefined ? true : validate.boolean(`HealthMonitor addCheck(${label}) critical`, opts.critical);
    let timeout = this.timeout;
    if (opts.timeout !== undefined) {
      timeout = validate.positiveDuration(`HealthMonitor addCheck(${label}) timeout`, opts.timeout);
      if (timeout > this.timeout) {
        throw new RangeError(`HealthMonitor addCheck(${label}) timeout must not exceed the monitor's timeout (${this.timeout} ms), got ${timeout}`);
      }
    }
    this.register({ kind: 'check', name, check, critical, timeout });
    return this;
  }

  /**
   * Reports a circuit breaker's state as a check: closed passes, half-open warns, open or
   * isolated fails. Not critical unless `{ critical: true }`. The state is read when a report
   * is built, so it is never stale, and a breaker costs no timer and no listener.
   *
   * @example
   * ```ts
   * health.addCircuitBreaker('payments', paymentsBreaker);               // open: degraded
   * health.addCircuitBreaker('auth', authBreaker, { critical: true });   // open: unhealthy
   * ```
   */
  addCircuitBreaker(name: string, breaker: CircuitBreakerLike, options?: CircuitBreakerCheckOptions): this {
    const label = this.checkName('addCircuitBreaker', name);
    if (typeof breaker !== 'object' || breaker === null || !('state' in breaker)) {
      throw new TypeError(`HealthMonitor addCircuitBreaker(${label}): breaker must be an object with a state, got ${validate.show(breaker)}`);
    }
    const opts = validate.options(`HealthMonitor addCircuitBreaker(${label})`, options, BREAKER_OPTIONS);
    const critical = opts.critical === undefined ? false : validate.boolean(`HealthMonitor addCircuitBreaker(${label}) critical`, opts.critical);
    this.register({ kind: 'breaker', name, breaker, critical });
    return this;
  }

  /**
   * Unregisters a check or breaker; returns whether one had that name. A run already in
   * flight finishes as it started; later reports leave the check out.
   *
   * @example
   * ```ts
   * health.removeCheck('legacy-queue');
   * ```
   */
  removeCheck(name: string): boolean {
    const removed = this.entries.delete(name);
    if (removed) this.generation++;
    return removed;
  }

  /**
   * Runs every check (or shares the run in flight, or reuses a report younger than
   * `cacheTtl`) and reports. Never rejects; the report includes error text, so keep it
   * in-process or serve it through a handler built with `{ verbose: true }` only.
   *
   * @example
   * ```ts
   * const report = await health.check();
   * if (report.status !== 'healthy') logger.warn(report, 'health degraded');
   * ```
   */
  check(): Promise<HealthReport> {
    return this.outcome('all').then((outcome) => {
      const checks = this.results(outcome, false);
      return { status: overallStatus(checks), checkedAt: outcome.checkedAt, checks: Object.fromEntries(checks) };
    });
  }

  /**
   * Whether the process should receive traffic: `false` until {@link HealthMonitor.markReady},
   * from {@link HealthMonitor.drain} on, and while a critical check fails. Runs the critical
   * checks only (or reuses a report younger than `cacheTtl`). Never rejects.
   *
   * @example
   * ```ts
   * const { ready, reason } = await health.ready(); // { ready: false, reason: 'starting', checks: {} }
   * ```
   */
  async ready(): Promise<ReadinessReport> {
    const before = this.notReady();
    if (before !== undefined) return before;
    const outcome = await this.outcome('critical');
    const checks = Object.fromEntries(this.results(outcome, true));
    // drain() may have been called while the checks ran: it wins at once.
    const after = this.notReady();
    if (after !== undefined) return { ...after, checks };
    return Object.values(checks).some((result) => result.status === 'fail') ? { ready: false, reason: 'unhealthy', checks } : { ready: true, checks };
  }

  /**
   * Whether the process is alive: always `{ alive: true }`, synchronously, and it never runs a
   * dependency check. A liveness probe that checks a database restarts every pod when that
   * database goes down, which cures nothing.
   *
   * @example
   * ```ts
   * health.live(); // { alive: true }
   * ```
   */
  live(): LivenessReport {
    return { alive: true };
  }

  /**
   * Declares the process ready to serve (call it once the server listens and warm-up is done).
   * Calling it again does nothing, and so does calling it after {@link HealthMonitor.drain}:
   * a startup that finishes after SIGTERM must not put the pod back into rotation.
   *
   * @example
   * ```ts
   * server.listen(8080, () => health.markReady());
   * ```
   */
  markReady(): void {
    if (this.currentPhase === 'starting') this.currentPhase = 'ready';
  }

  /**
   * Starts a graceful shutdown: from now on {@link HealthMonitor.ready} answers `false` (and
   * `/ready` 503) for good, while `/live` stays 200 and `/health` keeps reporting. Keep
   * serving until the load balancers have noticed, then close the server.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', async () => {
   *   health.drain();
   *   await setTimeout(10_000); // from node:timers/promises
   *   server.close();
   * });
   * ```
   */
  drain(): void {
    this.currentPhase = 'draining';
  }

  private checkName(method: string, name: unknown): string {
    if (typeof name !== 'string') throw new TypeError(`HealthMonitor ${method}: name must be a string, got ${validate.show(name)}`);
    const label = JSON.stringify(name);
    if (name.trim() === '') throw new RangeError(`HealthMonitor ${method}: name must not be empty, got ${label}`);
    if (this.entries.has(name)) throw new RangeError(`HealthMonitor ${method}: a check named ${label} is already registered`);
    return label;
  }

  private register(entry: Entry): void {
    this.entries.set(entry.name, entry);
    this.generation++;
  }

  private notReady(): { ready: false; reason: NotReadyReason; checks: Record<string, CheckResult> } | undefined {
    if (this.currentPhase === 'ready') return undefined;
    return { ready: false, reason: this.currentPhase, checks: {} };
  }

  /** A cached outcome still fresh for `scope` (a full one serves the critical scope too). */
  private fresh(scope: Scope): Outcome | undefined {
    const now = this.clock.now();
    const candidates = scope === 'all' ? [this.cached.all] : [this.cached.all, this.cached.critical];
    for (const outcome of candidates) {
      if (outcome !== undefined && outcome.generation === this.generation && now - outcome.checkedAt < this.cacheTtl) return outcome;
    }
    return undefined;
  }

  /** The outcome for `scope`: cached, the run in flight, or a new run. */
  private outcome(scope: Scope): Promise<Outcome> {
    const fresh = this.fresh(scope);
    if (fresh !== undefined) return Promise.resolve(fresh);
    const inFlight = this.running[scope];
    if (inFlight !== undefined && inFlight.generation === this.generation) return inFlight.promise;

    const generation = this.generation;
    const entries = [...this.entries.values()].filter((entry) => scope === 'all' || entry.critical);
    const checks = entries.filter((entry): entry is CheckEntry => entry.kind === 'check');
    if (checks.length === 0) {
      return Promise.resolve({ generation, entries, results: new Map(), checkedAt: this.clock.now() });
    }
    const promise = Promise.all(checks.map((entry) => this.sharedCheck(entry))).then((results): Outcome => {
      const outcome: Outcome = {
        generation,
        entries,
        results: new Map(checks.map((entry, i) => [entry.name, results[i] as CheckResult])),
        checkedAt: this.clock.now(),
      };
      if (this.running[scope] === run) this.running[scope] = undefined;
      if (this.cacheTtl > 0 && generation === this.generation) this.cached[scope] = outcome;
      return outcome;
    });
    const run: Run = { generation, promise };
    this.running[scope] = run;
    return promise;
  }

  /** The results of an outcome in registration order, breakers read now; only the critical ones when asked. */
  private results(outcome: Outcome, criticalOnly: boolean): [string, CheckResult][] {
    const results: [string, CheckResult][] = [];
    for (const entry of outcome.entries) {
      if (criticalOnly && !entry.critical) continue;
      const result = entry.kind === 'breaker' ? this.readBreaker(entry) : outcome.results.get(entry.name);
      if (result !== undefined) results.push([entry.name, result]);
    }
    return results;
  }

  /** The invocation of a check in flight, or a new one: `/health` and `/ready` probed together ping the database once. */
  private sharedCheck(entry: CheckEntry): Promise<CheckResult> {
    const inFlight = this.checksInFlight.get(entry);
    if (inFlight !== undefined) return inFlight;
    const result = this.runCheck(entry).then((outcome) => {
      this.checksInFlight.delete(entry);
      return outcome;
    });
    this.checksInFlight.set(entry, result);
    return result;
  }

  /** Runs one check function; the promise always fulfils, by the check's timeout at the latest. */
  private runCheck(entry: CheckEntry): Promise<CheckResult> {
    const clock = this.clock;
    const started = clock.now();
    const controller = new AbortController();
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      let timer: unknown;
      const finish = (status: CheckStatus, error: unknown, timedOut: boolean): void => {
        if (settled) return; // the timeout answered first: a late outcome changes nothing
        settled = true;
        clock.clearTimeout(timer);
        const checkedAt = clock.now();
        const base = { status, durationMs: Math.max(0, checkedAt - started), critical: entry.critical, checkedAt };
        if (status !== 'fail') {
          resolve(base);
        } else if (timedOut) {
          resolve({ ...base, error: `timed out after ${entry.timeout} ms`, cause: error, timedOut: true });
        } else {
          resolve({ ...base, error: describe(error), cause: error });
        }
      };
      // Armed before the check is called, so a check that settles at the deadline exactly has
      // lost: a timeout means "not settled when the time was up".
      timer = clock.setTimeout(() => {
        const reason = new DOMException(`Health check ${JSON.stringify(entry.name)} timed out after ${entry.timeout} ms`, 'TimeoutError');
        finish('fail', reason, true);
        controller.abort(reason);
      }, entry.timeout);
      let value: unknown;
      try {
        value = entry.check({ signal: controller.signal });
      } catch (error) {
        finish('fail', error, false);
        return;
      }
      const settleWith = (resolved: unknown): void => {
        if (resolved === false) finish('fail', new Error('the check returned false'), false);
        else finish('pass', undefined, false);
      };
      let thenable: boolean;
      try {
        thenable = (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
      } catch (error) {
        finish('fail', error, false); // a `then` getter that throws: what a promise would reject with
        return;
      }
      // A synchronous answer settles now: behind a microtask its duration would include
      // whatever other work got queued first.
      if (!thenable) {
        settleWith(value);
        return;
      }
      // Both outcomes are handled, so a check that rejects after its timeout leaves no
      // unhandled rejection behind.
      Promise.resolve(value).then(settleWith, (error: unknown) => finish('fail', error, false));
    });
  }

  private readBreaker(entry: BreakerEntry): CheckResult {
    const checkedAt = this.clock.now();
    const base = { durationMs: 0, critical: entry.critical, checkedAt };
    let state: unknown;
    try {
      state = entry.breaker.state;
    } catch (error) {
      return { ...base, status: 'fail', error: `reading the circuit state failed: ${describe(error)}`, cause: error };
    }
    const details: Record<string, unknown> = { state };
    if (typeof entry.breaker.stats === 'function') {
      try {
        const stats = entry.breaker.stats();
        // A promise is no counter to show; watched, so a rejection is reported, not unhandled.
        if (isThenable(stats)) watchReturned(`the stats() of circuit breaker ${JSON.stringify(entry.name)}`, stats);
        else details['stats'] = stats;
      } catch {
        // Counters are a nicety: a breaker whose stats() throws still reports its state.
      }
    }
    switch (state) {
      case 'closed':
        return { ...base, status: 'pass', details };
      case 'half-open':
        return { ...base, status: 'warn', error: 'circuit half-open', details };
      case 'open':
      case 'isolated':
        return { ...base, status: 'fail', error: `circuit ${state}`, details };
      default:
        return { ...base, status: 'fail', error: `unknown circuit state ${validate.show(state)}`, details };
    }
  }
}

function overallStatus(results: readonly [string, CheckResult][]): HealthStatus {
  let status: HealthStatus = 'healthy';
  for (const [, result] of results) {
    if (result.status === 'fail' && result.critical) return 'unhealthy';
    if (result.status !== 'pass') status = 'degraded';
  }
  return status;
}
