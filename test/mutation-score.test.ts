import { describe, expect, it } from 'vitest';
import { belowFloor, scoresOf } from '../scripts/mutation-score.mjs';

type Status = 'Killed' | 'Timeout' | 'Survived' | 'NoCoverage' | 'CompileError' | 'Ignored';

/** A Stryker JSON report of one file: `source`, and one mutant per [line, status]. */
function report(file: string, source: string, mutants: [line: number, status: Status][]) {
  return {
    files: {
      [file]: {
        source,
        mutants: mutants.map(([line, status], i) => ({
          id: String(i),
          mutatorName: 'ConditionalExpression',
          replacement: 'true',
          status,
          location: { start: { line, column: 1 }, end: { line, column: 2 } },
        })),
      },
    },
  };
}

const SOURCE = 'if (a) f();\nif (b) g();\nif (c) h();';

describe('scripts/mutation-score.mjs', () => {
  it('scores a file as detected (killed, timed out) over detected and undetected (survived, not covered)', () => {
    const scores = scoresOf([report('src/a.ts', SOURCE, [
      [1, 'Killed'], [1, 'Timeout'], [2, 'Survived'], [2, 'NoCoverage'], [3, 'CompileError'], [3, 'Ignored'],
    ])]);
    expect(scores.get('src/a.ts')).toMatchObject({ detected: 2, undetected: 2, other: 2, score: 50 });
    expect(scores.get('src/a.ts')!.survivors).toEqual([
      'src/a.ts:2 ConditionalExpression → true',
      'src/a.ts:2 ConditionalExpression → true',
    ]);
  });

  it('counts a file with no testable mutant as 100 %, and lists files in path order', () => {
    const scores = scoresOf([
      { files: { ...report('src/z.ts', SOURCE, [[1, 'Killed']]).files, ...report('src/types.ts', 'type A = 1;', []).files } },
    ]);
    expect([...scores.keys()]).toEqual(['src/types.ts', 'src/z.ts']);
    expect(scores.get('src/types.ts')!.score).toBe(100);
  });

  it('lets a later run of some lines replace the mutants of those lines only', () => {
    const full = report('src/a.ts', SOURCE, [[1, 'Killed'], [2, 'Survived'], [2, 'Survived'], [3, 'Survived']]);
    // Tests added, line 2 moved down by a new line, re-run on line 2's code only.
    const retest = report('src/a.ts', `// why\n${SOURCE}`, [[3, 'Killed'], [3, 'Killed']]);
    const scores = scoresOf([full, retest]);
    expect(scores.get('src/a.ts')).toMatchObject({ detected: 3, undetected: 1, score: 75 });
    expect(scores.get('src/a.ts')!.survivors).toEqual(['src/a.ts:3 ConditionalExpression → true']);
  });

  it('drops the earlier mutants of a line no longer in the file', () => {
    const full = report('src/a.ts', SOURCE, [[1, 'Killed'], [3, 'Survived']]);
    const rewritten = report('src/a.ts', 'if (a) f();\nif (b) g();', [[2, 'Killed']]);
    expect(scoresOf([full, rewritten]).get('src/a.ts')).toMatchObject({ detected: 2, undetected: 0, score: 100 });
  });

  it('names the files under the floor, and only those', () => {
    const scores = scoresOf([
      report('src/a.ts', SOURCE, [[1, 'Killed'], [2, 'Killed'], [3, 'Survived']]),
      { files: report('src/b.ts', SOURCE, [[1, 'Killed'], [2, 'Killed']]).files },
    ]);
    expect(belowFloor(scores, 95)).toEqual(['src/a.ts']);
    expect(belowFloor(scores, 66)).toEqual([]);
    expect(belowFloor(scores, 66.67)).toEqual(['src/a.ts']);
  });
});
