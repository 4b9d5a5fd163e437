/**
 * `bulwark/chaos`: chaos injection, like Polly's Simmy. Three policies inject a fault, a
 * latency or an outcome into a share of calls, to prove that the rest of a stack (timeouts,
 * retries, breakers, fallbacks) and the code above it cope. Each is a bulwark policy written
 * against the public contract only: it takes the core from the `bulwark` entry itself (one
 * engine in a process, never a copy) and composes anywhere the built-in policies do.
 *
 * @module bulwark/chaos
 */
export { ChaosFaultPolicy, chaosFault } from './fault.js';
export type { ChaosFaultEvents, ChaosFaultOptions, FaultFunction } from './fault.js';
export { ChaosLatencyPolicy, chaosLatency } from './latency.js';
export type { ChaosLatencyEvents, ChaosLatencyOptions, LatencyFunction } from './latency.js';
export { ChaosOutcomePolicy, chaosOutcome } from './outcome.js';
export type { ChaosOutcomeEvents, ChaosOutcomeOptions, OutcomeFunction } from './outcome.js';
export type { ChaosOptions } from './trigger.js';
export { seededRandom } from './random.js';
