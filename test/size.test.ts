/**
 * What each way of importing bulwark adds to a user's bundle stays within its budget:
 * bench/size.mjs bundles the built ESM entries with esbuild (tree shaking, minified) and
 * gzips them. Needs `dist/` (`npm test` builds before vitest runs).
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the benchmark, with no declarations
import { BUDGETS, measure } from '../bench/size.mjs';

interface Row {
  readonly name: string;
  readonly code: string;
  readonly budget: number;
}

describe('bundle size, minified and gzipped', () => {
  it.each((BUDGETS as Row[]).map((row) => [row.name, row] as const))('%s stays within its budget', async (_, row) => {
    const { gzipped } = (await measure(row.code)) as { gzipped: number };
    expect(gzipped, `${row.name}: ${gzipped} B, budget ${row.budget} B`).toBeLessThanOrEqual(row.budget);
  });

  it('adds nothing to a bundle that imports no policy: the core runs no code when loaded', async () => {
    const { minified } = (await measure("import 'bulwark'")) as { minified: number };
    expect(minified).toBe(0);
  });
});
