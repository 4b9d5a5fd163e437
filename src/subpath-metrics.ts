/**
 * What the metric exporters (`bulwark/prometheus`, `bulwark/otel`) share: the breaker states
 * and the counters of a registry snapshot, with what each counts. Each exporter names them in
 * its own convention (`calls_total`, `bulwark.calls`). The core never imports this file.
 * @internal
 */
import type { CircuitState } from './circuit-breaker.js';
import type { PolicyKind } from './metrics.js';

/** Every state a breaker can be in: one series each, so a state that is not current reads 0 rather than vanishing. */
export const CIRCUIT_STATES: readonly ['closed', 'open', 'half-open', 'isolated'] = ['closed', 'open', 'half-open', 'isolated'];
// Fails to compile when a name here is not a state, or when the core adds a state this list does not know.
const listedAreStates: readonly CircuitState[] = CIRCUIT_STATES;
void listedAreStates;
const everyStateListed: Exclude<CircuitState, (typeof CIRCUIT_STATES)[number]> extends never ? true : never = true;
void everyStateListed;

export type CounterField = 'calls' | 'successes' | 'failures' | 'rejections' | 'timeouts' | 'retries' | 'fallbacks';

export interface Counter {
  readonly field: CounterField;
  /** One of them, as a UCUM annotation (`{call}`). */
  readonly unit: string;
  readonly description: string;
  /**
   * The kinds of policy that can move this counter; undefined: every kind. A counter only one
   * kind can move is exported for that kind only, and always for it, so a series exists from
   * the first scrape and a rate sees its first increase.
   */
  readonly kinds?: readonly PolicyKind[];
}

/** The counters, in the order they are exported. */
export const COUNTERS: readonly Counter[] = [
  { field: 'calls', unit: '{call}', description: 'Calls that entered the policy.' },
  { field: 'successes', unit: '{success}', description: "Calls that left the policy with a value (a fallback's answer included)." },
  { field: 'failures', unit: '{failure}', description: "Calls that left the policy with an error, not counting the policy's own refusals." },
  {
    field: 'rejections',
    unit: '{rejection}',
    kinds: ['circuit-breaker', 'bulkhead'],
    description: 'Calls the policy refused without running them: an open circuit, a full bulkhead, a queue wait past its timeout.',
  },
  { field: 'timeouts', unit: '{timeout}', kinds: ['timeout'], description: 'Calls the timeout policy ended at its deadline.' },
  { field: 'retries', unit: '{retry}', kinds: ['retry'], description: 'Retries the retry policy scheduled (its backoff began).' },
  { field: 'fallbacks', unit: '{fallback}', kinds: ['fallback'], description: 'Calls the fallback policy answered with its fallback.' },
];
