/**
 * The bulwark policies a registry or a logger watches: a lone policy, or the members of a
 * stack, each with its description and the name it goes by.
 */
import type { Step } from '../engine/step.js';
import type { PolicyDescription } from '../engine/contract.js';
import { LayerPolicy, PolicyBase, descriptionOf, stepsOf } from '../engine/policy.js';
import * as validate from '../shared/validate.js';

/**
 * The kind of a policy, as metrics and logs name it: one of bulwark's, or the kind a policy
 * of your own describes itself with.
 */
export type PolicyKind = 'circuit-breaker' | 'retry' | 'bulkhead' | 'timeout' | 'fallback' | (string & {});

/** A bulwark policy resolved for watching: its step (where its observer goes), description and name. */
export interface NamedPolicy {
  readonly policy: LayerPolicy<unknown, unknown>;
  readonly step: Step;
  readonly description: PolicyDescription;
  readonly kind: string;
  readonly name: string;
}

/** The fields of a snapshot entry that a description's counters and gauges may not take. */
const RESERVED_FIELDS: readonly string[] = ['name', 'kind', 'calls', 'successes', 'failures', 'rejections', 'latency'];

/**
 * Refuses a description whose counters and gauges would overwrite a field of the snapshot
 * entry, or each other: the entry would lie, and an exporter would fail on it later.
 */
function checkDescription(caller: string, description: PolicyDescription): void {
  const seen = new Set<string>();
  for (const { field } of [...(description.counters ?? []), ...(description.gauges ?? [])]) {
    if (typeof field !== 'string' || field === '' || RESERVED_FIELDS.includes(field) || seen.has(field)) {
      throw new TypeError(
        `${caller}: the ${description.kind} describes a counter or gauge named ${validate.show(field)}; each needs a field of its own, not one of ${RESERVED_FIELDS.map((name) => JSON.stringify(name)).join(', ')}`,
      );
    }
    seen.add(field);
  }
}

function ownName(description: PolicyDescription): string | undefined {
  const name = description.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/**
 * The named bulwark policies of `target`: the policy itself, or the members of a composed
 * stack (foreign layers and members without a name skipped). `caller` names the function in
 * error messages.
 */
export function namedPolicies(caller: string, target: unknown, name: unknown): NamedPolicy[] {
  if (name !== undefined) {
    if (typeof name !== 'string') throw new TypeError(`${caller} name must be a string, got ${validate.show(name)}`);
    if (name === '') throw new RangeError(`${caller} name must not be empty`);
  }
  if (!(target instanceof PolicyBase)) {
    const foreign = typeof target === 'object' && target !== null && typeof (target as { execute?: unknown }).execute === 'function';
    throw new TypeError(
      foreign
        ? `${caller}: expected a bulwark policy or a composed stack, got an object with execute() that is neither (a policy of another library, another copy of bulwark, or a CircuitBreakerGroup: observe the breakers it hands out instead)`
        : `${caller}: expected a bulwark policy or a composed stack, got ${validate.show(target)}`,
    );
  }
  if (target instanceof LayerPolicy) {
    const description = descriptionOf(target);
    checkDescription(caller, description);
    const resolved = name ?? ownName(description);
    if (resolved === undefined) {
      throw new TypeError(`${caller}: the ${description.kind} has no name; build it with { name } or pass { name } here`);
    }
    return [{ policy: target, step: stepsOf(target)[0] as Step, description, kind: description.kind, name: resolved }];
  }
  const found: NamedPolicy[] = [];
  const seen = new Set<unknown>();
  for (const step of stepsOf(target)) {
    const layer = step.layer;
    if (seen.has(layer)) continue; // the same policy twice in one stack is one policy
    seen.add(layer);
    if (!(layer instanceof LayerPolicy)) continue; // a foreign layer: nothing to observe
    const description = descriptionOf(layer);
    checkDescription(caller, description);
    const resolved = ownName(description) ?? name;
    if (resolved !== undefined) found.push({ policy: layer, step, description, kind: description.kind, name: resolved });
  }
  if (found.length === 0) {
    throw new TypeError(`${caller}: the stack has no named bulwark policy; build its policies with { name } or pass { name } here`);
  }
  return found;
}
