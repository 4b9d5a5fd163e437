/**
 * What the metrics of a policy mean: the counters every policy has, and the counters and
 * gauges of bulwark's own kinds. The policies describe themselves with these (one source), a
 * `MetricsRegistry` writes the catalog of the kinds it tracks into every snapshot, and the
 * exporters read the snapshot's catalog, falling back to this one for a snapshot made by
 * hand. A new kind of policy brings its own description and needs no line here.
 */
import type { CircuitBreakerEvents, CircuitState } from '../circuit-breaker/types.js';
import type { CounterDescription, GaugeDescription, LogDescription } from '../engine/contract.js';
import type { CircuitOpenError } from '../errors.js';

/** What a snapshot's catalog says of one kind. */
export interface KindMetrics {
  /** True for a kind that refuses calls itself (a breaker, a bulkhead): its `rejections` are exported. */
  readonly refuses: boolean;
  readonly counters: readonly CounterDescription[];
  readonly gauges: readonly GaugeDescription[];
}

/** A counter every policy has, moved by the engine itself. */
export interface CoreCounter {
  readonly field: 'calls' | 'successes' | 'failures' | 'rejections';
  readonly unit: string;
  readonly description: string;
}

/** The counters every policy has, in the order they are exported; `rejections` only for kinds that refuse. */
export const CORE_COUNTERS: readonly CoreCounter[] = [
  { field: 'calls', unit: '{call}', description: 'Calls that entered the policy.' },
  { field: 'successes', unit: '{success}', description: "Calls that left the policy with a value (a fallback's answer included)." },
  { field: 'failures', unit: '{failure}', description: "Calls that left the policy with an error, not counting the policy's own refusals." },
  {
    field: 'rejections',
    unit: '{rejection}',
    description: 'Calls the policy refused without running them: an open circuit, a full bulkhead, a queue wait past its timeout.',
  },
];

export const TIMEOUT_COUNTERS: readonly CounterDescription[] = [
  { field: 'timeouts', event: 'timeout', unit: '{timeout}', description: 'Calls the timeout policy ended at its deadline.' },
];

export const RETRY_COUNTERS: readonly CounterDescription[] = [
  { field: 'retries', event: 'retry', unit: '{retry}', description: 'Retries the retry policy scheduled (its backoff began).' },
];

export const FALLBACK_COUNTERS: readonly CounterDescription[] = [
  { field: 'fallbacks', event: 'fallback', unit: '{fallback}', description: 'Calls the fallback policy answered with its fallback.' },
];

export const CIRCUIT_STATES: readonly ['closed', 'open', 'half-open', 'isolated'] = ['closed', 'open', 'half-open', 'isolated'];

export const BREAKER_GAUGES: readonly GaugeDescription[] = [
  {
    field: 'state',
    prometheus: 'circuit_state',
    otel: 'bulwark.circuit.status',
    description: 'The state of the circuit breaker: 1 for the current state, 0 for the others.',
    unit: '1',
    type: 'state',
    states: CIRCUIT_STATES,
    stateLabel: { prometheus: 'state', otel: 'bulwark.circuit.state' },
  },
  {
    field: 'failureRate',
    prometheus: 'circuit_failure_ratio',
    otel: 'bulwark.circuit.failure_ratio',
    description: 'Share of recent calls the circuit breaker counted as failures, from 0 to 1.',
    unit: '1',
    type: 'ratio',
  },
  {
    field: 'slowCallRate',
    prometheus: 'circuit_slow_call_ratio',
    otel: 'bulwark.circuit.slow_call_ratio',
    description: 'Share of recent calls the circuit breaker counted as slow, from 0 to 1.',
    unit: '1',
    type: 'ratio',
  },
];

const STATE_VERBS: Readonly<Record<CircuitState, string>> = {
  open: 'opened',
  'half-open': 'half-open, letting trial calls through',
  closed: 'closed',
  isolated: 'isolated',
};

/** The log lines of a circuit breaker, the core's and a shared one's alike. */
export const BREAKER_LOGS: readonly LogDescription[] = [
  {
    event: 'stateChange',
    // An opening is news to act on; a circuit turning half-open or closing is the dependency recovering.
    level: ({ to }: CircuitBreakerEvents['stateChange']) => (to === 'open' || to === 'isolated' ? 'warn' : 'info'),
    perCall: false,
    message: ({ from, to, reason }: CircuitBreakerEvents['stateChange'], label: string) => `${label} ${STATE_VERBS[to]} (was ${from}, ${reason})`,
    fields: ({ from, to, reason }: CircuitBreakerEvents['stateChange']) => ({ from, to, reason }),
  },
  {
    event: 'rejected',
    level: 'warn',
    perCall: true,
    plural: 'rejections',
    message: ({ error }: { error: CircuitOpenError }, label: string) => `${label} rejected a call: ${error.message}`,
    fields: ({ error }: { error: CircuitOpenError }) => {
      const fields: Record<string, unknown> = { reason: error.state, error: { name: error.name, message: error.message } };
      if (Number.isFinite(error.retryAfter)) fields['retryAfter'] = error.retryAfter;
      return fields;
    },
  },
];

export const BULKHEAD_GAUGES: readonly GaugeDescription[] = [
  { field: 'active', prometheus: 'bulkhead_active_calls', otel: 'bulwark.bulkhead.call.active', description: 'Calls running in the bulkhead now.', unit: '{call}', type: 'count' },
  { field: 'queued', prometheus: 'bulkhead_queued_calls', otel: 'bulwark.bulkhead.call.queued', description: 'Calls waiting in the bulkhead queue now.', unit: '{call}', type: 'count' },
];

/**
 * bulwark's own kinds, in the order their series are exported (so the exposition of a
 * snapshot does not depend on the order its policies were tracked in).
 */
export const BUILTIN_KINDS: Readonly<Record<string, KindMetrics>> = {
  timeout: { refuses: false, counters: TIMEOUT_COUNTERS, gauges: [] },
  retry: { refuses: false, counters: RETRY_COUNTERS, gauges: [] },
  fallback: { refuses: false, counters: FALLBACK_COUNTERS, gauges: [] },
  'circuit-breaker': { refuses: true, counters: [], gauges: BREAKER_GAUGES },
  bulkhead: { refuses: true, counters: [], gauges: BULKHEAD_GAUGES },
};

/**
 * The events bulwark's own policies log. `logPolicyEvents` accepts a level for any of them
 * whatever its target (one options object may serve every stack), and for the events the
 * target's own policies describe.
 */
export const BUILTIN_LOGGED_EVENTS: readonly string[] = ['stateChange', 'rejected', 'giveUp', 'retry', 'timeout', 'fallback'];

/** A counter's field as exporters name it: `inFlightSaturations` → `in_flight_saturations`. */
export function snakeCase(field: string): string {
  return field.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** The catalog of a snapshot: its own for the kinds it names, bulwark's for the others (a snapshot made by hand). */
export function catalogOf(kinds: Readonly<Record<string, KindMetrics>> | undefined): Readonly<Record<string, KindMetrics>> {
  return kinds === undefined ? BUILTIN_KINDS : { ...BUILTIN_KINDS, ...kinds };
}
