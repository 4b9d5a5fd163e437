/**
 * The script the upstream follows. Phases start at fractions of the run, so a 2-second run
 * tells the same story as a 20-second one: healthy, an error burst, a latency spike, a full
 * outage, and the recovery.
 */
import type { DependencyName } from './stacks.js';
import type { Condition, Upstream } from './upstream.js';

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
}

const healthy: Readonly<Record<DependencyName, Condition>> = {
  payments: { latency: [15, 40] },
  inventory: { latency: [5, 20] },
  recommendations: { latency: [20, 60] },
};

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
  },
  {
    label: 'outage',
    title: 'full outage',
    start: 0.5,
    conditions: {
      payments: { ...healthy.payments, outage: 'unavailable' },
      inventory: { ...healthy.inventory, outage: 'dropped' },
      recommendations: { ...healthy.recommendations, outage: 'hanging' },
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
  return troubles.length === 0 ? `answers in ${range(condition.latency)}` : troubles.join(', ');
}

/** The dependencies a phase troubles (set apart from the first phase), each with what it does ("payments: 35% 500s"). */
export function describePhase(phase: Phase): string {
  const baseline = phases[0] ?? phase;
  const troubled = (Object.keys(phase.conditions) as DependencyName[]).filter((name) => phase.conditions[name] !== baseline.conditions[name]);
  if (troubled.length === 0) return 'every dependency answers normally';
  return troubled.map((name) => `${name} ${describeCondition(phase.conditions[name])}`).join(' · ');
}

/**
 * Plays the script against `upstream` over `durationMs`: the first phase at once, each next
 * one on its own timer. Returns the function that cancels the phases still to come.
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
