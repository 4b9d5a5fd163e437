/**
 * The public types of `bulwark/health`: statuses, checks, options and reports.
 */
import type { CircuitState } from '../circuit-breaker/types.js';
import type { Clock } from '../shared/clock.js';

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
  /** Read when a report is made: closed passes, half-open warns, open or isolated fails. */
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
  /** `'pass'`, `'warn'` or `'fail'`. */
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
  /** Whether the process should receive traffic. */
  readonly ready: boolean;
  /** Why the process is not ready; absent when it is. */
  readonly reason?: NotReadyReason;
  /** The critical checks, when they ran (empty while starting or draining). */
  readonly checks: Readonly<Record<string, CheckResult>>;
}

/** The result of {@link HealthMonitor.live}. */
export interface LivenessReport {
  /** Always `true`: a process that can answer is alive. */
  readonly alive: true;
}
