/**
 * The script the upstream and the shop follow. Phases start at fractions of the run, so a
 * 2-second run tells the same story as a 20-second one: healthy, an error burst, a latency
 * spike, a full outage, and the recovery. Through the error burst and the latency spike the
 * shop also looks up addresses (geocoding) three times as often as usual: nearly twice what its
 * vendor allows.
 */
import type { DependencyName } from './stacks.js';
import type { Condition, Upstream, VendorLimit } from './upstream.js';

/** One stretch of the script. */
export interface Phase {
  /** A word for the timeline's ruler. */
  readonly label: string;
  /** What happens, for the dashboard's heading. */
  readonly title: string;
  /** When it starts, as a fraction of the run (0 to 1). */
  readonly start: number;
  /** How each dependency behaves during the phase. */
  readonly conditions: Readonly<Record<DependencyName, Condition>>;
  /** Calls per second the shop makes to a dependency during the phase, where it is not the dependency's usual rate. */
  readonly demand?: Readonly<Partial<Record<DependencyName, number>>>;
}

/**
 * The vendors' own rate limits, which the upstream enforces (`429` beyond them): the geocoding
 * vendor allows 20 requests in any second.
 */
export const vendorLimits: Readonly<Partial<Record<DependencyName, VendorLimit>>> = {
  geocoding: { rate: 20, interval: 1_000 },
};

const healthy: Readonly<Record<DependencyName, Condition>> = {
  payments: { latency: [15, 40] },
  inventory: { latency: [5, 20] },
  recommendations: { latency: [20, 60] },
  geocoding: { latency: [20, 60] },
  // A long tail, always: one answer in 20 takes about 20 times as long as the others.
  pricing: { latency: [15, 45], tail: { every: 20, latency: [400, 1_000] } },
};

/** The rush: the shop looks up addresses at this rate, well beyond what the geocoding vendor allows. */
const rush = { geocoding: 36 } as const;

/** The script, in order. */
export const phases: readonly Phase[] = [
  { label: 'calm', title: 'healthy', start: 0, conditions: healthy },
  {
    label: 'errors',
    title: 'error burst',
    start: 0.15,
    conditions: {
      ...healthy,
      payments: { ...healthy.payments, errors: 0.35, drops: 0.1 },
      recommendations: { ...healthy.recommendations, errors: 0.25 },
    },
    demand: rush,
  },
  {
    label: 'slow',
    title: 'latency spike',
    start: 0.33,
    conditions: {
      ...healthy,
      inventory: { ...healthy.inventory, spike: { share: 0.6, latency: [300, 900] } },
      recommendations: { latency: [80, 260] },
    },
    demand: rush,
  },
  {
    label: 'outage',
    title: 'full outage',
    start: 0.5,
    conditions: {
      payments: { ...healthy.payments, outage: 'unavailable' },
      inventory: { ...healthy.inventory, outage: 'dropped' },
      recommendations: { ...healthy.recommendations, outage: 'hanging' },
      geocoding: { ...healthy.geocoding, outage: 'unavailable' },
      pricing: { ...healthy.pricing, outage: 'dropped' },
    },
  },
  { label: 'back', title: 'recovery', start: 0.72, conditions: healthy },
];

const percent = (share: number): string => `${Math.round(share * 100)}%`;
const range = ([min, max]: readonly [number, number]): string => `${min}–${max} ms`;

/** What a condition means, in a few words ("35% 500s, 10% dropped"). */
export function describeCondition(condition: Condition): string {
  switch (condition.outage) {
    case 'unavailable':
      return '503 for every request';
    case 'dropped':
      return 'drops every connection';
    case 'hanging':
      return 'never answers';
    case undefined:
      break;
  }
  const troubles: string[] = [];
  if (condition.errors !== undefined) troubles.push(`${percent(condition.errors)} 500s`);
  if (condition.drops !== undefined) troubles.push(`${percent(condition.drops)} dropped`);
  if (condition.spike !== undefined) troubles.push(`${percent(condition.spike.share)} take ${range(condition.spike.latency)}`);
  if (condition.tail !== undefined) troubles.push(`1 in ${condition.tail.every} takes ${range(condition.tail.latency)}`);
  return troubles.length === 0 ? `answers in ${range(condition.latency)}` : troubles.join(', ');
}

/**
 * The dependencies a phase troubles (set apart from the first phase), each with what it does
 * ("payments 35% 500s"), or what the shop asks of it ("geocoding asked 36 calls/s").
 */
export function describePhase(phase: Phase): string {
  const baseline = phases[0] ?? phase;
  const names = Object.keys(phase.conditions) as DependencyName[];
  const troubles = names.flatMap((name) => {
    const said: string[] = [];
    if (phase.conditions[name] !== baseline.conditions[name]) said.push(describeCondition(phase.conditions[name]));
    const demand = phase.demand?.[name];
    if (demand !== undefined) said.push(`asked ${demand} calls/s`);
    return said.length === 0 ? [] : [`${name} ${said.join(', ')}`];
  });
  return troubles.length === 0 ? 'every dependency answers normally' : troubles.join(' · ');
}

/**
 * Plays the script against `upstream` over `durationMs`: the first phase at once, each next
 * one on its own timer (`onPhase` hears of each, and tells the shop's load its demand).
 * Returns the function that cancels the phases still to come.
 */
export function playScenario(upstream: Upstream, durationMs: number, onPhase: (phase: Phase) => void): () => void {
  const apply = (phase: Phase): void => {
    for (const name of Object.keys(phase.conditions) as DependencyName[]) upstream.set(name, phase.conditions[name]);
    onPhase(phase);
  };
  const timers = phases.map((phase, index) => {
    if (index === 0) {
      apply(phase);
      return undefined;
    }
    return setTimeout(() => apply(phase), phase.start * durationMs);
  });
  return () => {
    for (const timer of timers) clearTimeout(timer);
  };
}

/** The phase running at `fraction` of the run. */
export function phaseAt(fraction: number): Phase {
  let current = phases[0];
  for (const phase of phases) if (phase.start <= fraction) current = phase;
  if (current === undefined) throw new Error('the scenario has no phases');
  return current;
}
