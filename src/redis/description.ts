/** What observability reads of the shared policies: their counters, gauges and log lines. */
import type { CircuitBreakerStats, CounterDescription, GaugeDescription, LogDescription, PolicyDescription } from 'bulwark';
import { BREAKER_GAUGES, BREAKER_LOGS, BULKHEAD_GAUGES } from '../shared/metric-catalog.js';
import type { RedisBulkheadEvents } from './bulkhead-options.js';
import type { RedisRateLimiterEvents } from './limiter.js';

export const REDIS_RATE_LIMITER_COUNTERS: readonly CounterDescription[] = [
  { field: 'redisStoreFailures', event: 'storeError', unit: '{failure}', description: 'Calls to Redis of a shared policy that failed or timed out.' },
  { field: 'sharedRateLimitDelays', event: 'delayed', unit: '{delay}', description: 'Calls the shared rate limiter made wait for a reserved permit.' },
];

export const REDIS_RATE_LIMITER_GAUGES: readonly GaugeDescription[] = [
  {
    field: 'redisStoreUp',
    prometheus: 'redis_store_up',
    otel: 'bulwark.redis_store.up',
    description: 'Whether Redis answers the shared policy (1) or local state stands in (0).',
    unit: '1',
    type: 'ratio',
  },
];

type Rejected = RedisRateLimiterEvents['rejected'];
type Down = RedisRateLimiterEvents['storeDown'];

export const REDIS_RATE_LIMITER_LOGS: readonly LogDescription[] = [
  {
    event: 'rejected',
    level: 'warn',
    perCall: true,
    plural: 'rejections',
    message: ({ error }: Rejected, label: string) => `${label} rejected a call: ${error.message}`,
    fields: ({ error, retryAfter }: Rejected) => ({ retryAfter, error: { name: error.name, message: error.message } }),
  },
  {
    event: 'storeDown',
    level: 'error',
    perCall: false,
    message: ({ error }: Down, label: string) => `${label}: Redis is down, deciding locally: ${error.message}`,
    fields: ({ error }: Down) => ({ error: { name: error.name, message: error.message } }),
  },
  { event: 'storeUp', level: 'info', perCall: false, message: (_: unknown, label: string) => `${label}: Redis is back, the limit is shared again`, fields: () => ({}) },
];

/** What observability reads of a fleet-wide bulkhead: this replica's slots and queue, the store's state. */
export const REDIS_BULKHEAD_COUNTERS: readonly CounterDescription[] = [REDIS_RATE_LIMITER_COUNTERS[0] as CounterDescription];

/** A bulkhead's gauges (the same families: the exporters describe each once), and the store's. */
export const REDIS_BULKHEAD_GAUGES: readonly GaugeDescription[] = [...BULKHEAD_GAUGES, ...REDIS_RATE_LIMITER_GAUGES];

type BulkheadRejected = RedisBulkheadEvents['rejected'];

export const REDIS_BULKHEAD_LOGS: readonly LogDescription[] = [
  {
    event: 'rejected',
    level: 'warn',
    perCall: true,
    plural: 'rejections',
    message: ({ error }: BulkheadRejected, label: string) => `${label} rejected a call: ${error.message}`,
    fields: ({ error, reason }: BulkheadRejected) => ({ reason, error: { name: error.name, message: error.message } }),
  },
  {
    event: 'storeDown',
    level: 'error',
    perCall: false,
    message: ({ error }: Down, label: string) => `${label}: Redis is down, slots are local: ${error.message}`,
    fields: ({ error }: Down) => ({ error: { name: error.name, message: error.message } }),
  },
  { event: 'storeUp', level: 'info', perCall: false, message: (_: unknown, label: string) => `${label}: Redis is back, the cap is shared again`, fields: () => ({}) },
];

/** The log lines a shared breaker adds to a breaker's: the store's ups and downs. */
const BREAKER_STORE_LOGS: readonly LogDescription[] = [
  {
    event: 'storeDown',
    level: 'error',
    perCall: false,
    message: ({ error }: Down, label: string) => `${label}: Redis is down, deciding with local state: ${error.message}`,
    fields: ({ error }: Down) => ({ error: { name: error.name, message: error.message } }),
  },
  { event: 'storeUp', level: 'info', perCall: false, message: (_: unknown, label: string) => `${label}: Redis is back, the breaker is shared again`, fields: () => ({}) },
];

/** The description of a shared circuit breaker: a circuit breaker to every exporter, plus the store's gauge. */
export function describeSharedBreaker(
  name: string,
  read: () => CircuitBreakerStats & { readonly redisStoreUp: number },
  on: NonNullable<PolicyDescription['on']>,
): PolicyDescription {
  return {
    kind: 'circuit-breaker',
    label: 'shared circuit breaker',
    name,
    refuses: true,
    counters: REDIS_BULKHEAD_COUNTERS,
    // Built here, not at module level: a bundle with the rate limiter or the bulkhead alone
    // keeps no breaker description (a spread is never dropped as unused).
    gauges: [...BREAKER_GAUGES, ...REDIS_RATE_LIMITER_GAUGES],
    logs: [...BREAKER_LOGS, ...BREAKER_STORE_LOGS],
    readGauges: () => {
      const { state, failureRate, slowCallRate, redisStoreUp } = read();
      return { state, failureRate, slowCallRate, redisStoreUp };
    },
    on,
  };
}
