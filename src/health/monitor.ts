import type { Clock } from '../shared/clock.js';
import * as validate from './options.js';
import { readBreaker, runCheck, type CheckEntry, type Entry } from './run-check.js';
import type {
  CheckOptions,
  CheckResult,
  CircuitBreakerCheckOptions,
  CircuitBreakerLike,
  HealthCheck,
  HealthMonitorOptions,
  HealthPhase,
  HealthReport,
  HealthStatus,
  LivenessReport,
  NotReadyReason,
  ReadinessReport,
} from './types.js';


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
   * import { setTimeout } from 'node:timers/promises';
   * process.once('SIGTERM', async () => {
   *   health.drain();
   *   await setTimeout(10_000);
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
      const result = entry.kind === 'breaker' ? readBreaker(this.clock, entry) : outcome.results.get(entry.name);
      if (result !== undefined) results.push([entry.name, result]);
    }
    return results;
  }

  /** The invocation of a check in flight, or a new one: `/health` and `/ready` probed together ping the database once. */
  private sharedCheck(entry: CheckEntry): Promise<CheckResult> {
    const inFlight = this.checksInFlight.get(entry);
    if (inFlight !== undefined) return inFlight;
    const result = runCheck(this.clock, entry).then((outcome) => {
      this.checksInFlight.delete(entry);
      return outcome;
    });
    this.checksInFlight.set(entry, result);
    return result;
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
