/** Types of scripts/mutation-score.mjs, for its test. */
export interface FileScore {
  /** Mutants killed or timed out. */
  detected: number;
  /** Mutants that survived or that no test covered. */
  undetected: number;
  /** Mutants that did not compile or were ignored. */
  other: number;
  /** `detected / (detected + undetected)` in percent; 100 with no testable mutant. */
  score: number;
  /** One line per undetected mutant: `file:line mutator → replacement`. */
  survivors: string[];
}
export function scoresOf(reports: readonly unknown[]): Map<string, FileScore>;
export function belowFloor(scores: Map<string, FileScore>, floor: number): string[];
