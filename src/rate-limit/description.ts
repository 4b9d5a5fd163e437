/** What observability reads of a rate limiter: its counter, its gauges and its log lines. */
import type { CounterDescription, GaugeDescription, LogDescription } from '../engine/contract.js';
import type { RateLimiterEvents } from './limiter.js';

export const RATE_LIMITER_COUNTERS: readonly CounterDescription[] = [
  {
    field: 'rateLimitDelays',
    event: 'delayed',
    unit: '{delay}',
    description: 'Calls the rate limiter made wait for their permit (a wait later aborted included).',
  },
];

export const RATE_LIMITER_GAUGES: readonly GaugeDescription[] = [
  {
    field: 'permits',
    prometheus: 'rate_limiter_available_permits',
    otel: 'bulwark.rate_limiter.permit.available',
    description: 'Permits of the rate limiter a burst of calls arriving now could take at once (0 while calls wait).',
    unit: '{permit}',
    type: 'count',
  },
  {
    field: 'queued',
    prometheus: 'rate_limiter_queued_calls',
    otel: 'bulwark.rate_limiter.call.queued',
    description: 'Calls waiting for a permit of the rate limiter now.',
    unit: '{call}',
    type: 'count',
  },
];

type Rejected = RateLimiterEvents['rejected'];
type Delayed = RateLimiterEvents['delayed'];

export const RATE_LIMITER_LOGS: readonly LogDescription[] = [
  {
    event: 'rejected',
    level: 'warn',
    perCall: true,
    plural: 'rejections',
    message: ({ error }: Rejected, label: string) => `${label} rejected a call: ${error.message}`,
    fields: ({ error, reason, retryAfter }: Rejected) => ({ reason, retryAfter, error: { name: error.name, message: error.message } }),
  },
  {
    event: 'delayed',
    level: 'off',
    perCall: true,
    plural: 'delays',
    message: ({ wait }: Delayed, label: string) => `${label} made a call wait ${Math.ceil(wait)} ms for its permit`,
    fields: ({ wait, queued }: Delayed) => ({ wait, queued }),
  },
];
