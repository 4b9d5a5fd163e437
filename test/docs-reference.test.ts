import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain .mjs scripts, run by node as well as imported here, with no types.
import { checkReference, compareTrees, typedoc, problemsIn } from '../scripts/docs-check.mjs';
// @ts-expect-error: as above.
import { checkExamples, extractExamples } from '../scripts/docs-examples.mjs';

interface Problem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}
interface Example {
  readonly line: number;
  readonly code: string[];
  readonly unclosed?: boolean;
}

const temporary: string[] = [];
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-docs-test-'));
  temporary.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

describe('the API reference in docs/api/', () => {
  it('is built by TypeDoc with every export documented and every {@link} resolved, and is the copy committed', async () => {
    const { code, problems, differences, pages } = (await checkReference()) as { code: number; problems: string[]; differences: string[]; pages: number };
    expect(problems, 'TypeDoc warned: document these in src/ (JSDoc comments)').toEqual([]);
    expect(code).toBe(0);
    expect(differences, 'docs/api/ is stale: run `npm run docs:api` and commit it').toEqual([]);
    expect(pages).toBeGreaterThan(100);
  }, 60_000);
});

describe('the @example code of src/', () => {
  it('compiles, each block as a module that imports the public API', () => {
    const { count, problems } = checkExamples() as { count: number; problems: Problem[] };
    expect(problems.map(({ file, line, message }) => `${file}:${line}: ${message}`)).toEqual([]);
    expect(count).toBeGreaterThan(50);
  }, 60_000);
});

describe('the checks fail when they should', () => {
  it('finds the code blocks of @example tags only, with the line each starts on', () => {
    const text = [
      '/**', //                                 1
      ' * Not an example:', //                  2
      ' * ```ts', //                            3
      " * notChecked('here');", //              4
      ' * ```', //                              5
      ' *', //                                  6
      ' * @example', //                         7
      ' * ```ts', //                            8
      ' * const a = 1;', //                     9
      ' *   const b = a;', //                   10
      ' * ```', //                              11
      ' * @param x - not an example either', // 12
      ' * ```ts', //                            13
      ' * notChecked();', //                    14
      ' * ```', //                              15
      ' */', //                                 16
      'export function f(): void {}', //        17
      '  /**', //                               18
      '   * @example', //                       19
      '   * ```typescript', //                  20
      '   * f();', //                           21
      '   */', //                               22
    ].join('\n');
    const examples = extractExamples(text) as Example[];
    expect(examples).toEqual([
      { line: 9, code: ['const a = 1;', '  const b = a;'] },
      { line: 21, code: ['f();'], unclosed: true },
    ]);
  });

  it('reports a broken example with the file and line it is written on, and passes a sound one', () => {
    const text = `import type { RetryOptions } from './retry.js';

/**
 * Sound: the public API, and a name of the prelude.
 *
 * @example
 * \`\`\`ts
 * const retry = retryWithBackoff({ maxRetries: 3 });
 * const found = await retry.execute(() => api.getOrder(id, { attempt: 1 }));
 * \`\`\`
 */
export function sound(): void {}

/**
 * A misspelt option, an export that does not exist, a name declared nowhere.
 *
 * @example
 * \`\`\`ts
 * import { Redis } from 'ioredis';
 * const retry = retryWithBackoff({ maxRetriez: 3 });
 * const breaker = new CircuitBreaker({ failureThreshold: 5 });
 * breaker.execute(() => notDeclaredAnywhere());
 * \`\`\`
 *
 * @example
 * \`\`\`ts
 * import { retryForever } from 'bulwark';
 * \`\`\`
 */
export function broken(options: RetryOptions): RetryOptions { return options; }
`;
    const { count, problems } = checkExamples({ sources: [{ file: 'src/fixture.ts', text }] }) as { count: number; problems: Problem[] };
    expect(count).toBe(3);
    const at = (line: number): string[] => problems.filter((problem) => problem.file === 'src/fixture.ts' && problem.line === line).map((problem) => problem.message);
    expect(problems.every((problem) => problem.file === 'src/fixture.ts')).toBe(true);
    expect(at(20).join('\n')).toMatch(/maxRetriez/);
    expect(at(22).join('\n')).toMatch(/notDeclaredAnywhere/);
    expect(at(27).join('\n')).toMatch(/retryForever/);
    expect(problems.filter((problem) => problem.line < 12)).toEqual([]);
  }, 60_000);

  it('makes TypeDoc fail on an undocumented export, a {@link} to nothing, and a payload field no comment names', async () => {
    const dir = folder({
      'package.json': JSON.stringify({ name: 'fixture', version: '1.0.0', type: 'module' }),
      // bulwark's options, for this entry and its tsconfig.
      'typedoc.json': JSON.stringify({ extends: [join(process.cwd(), 'typedoc.json')], entryPoints: ['./index.ts'], tsconfig: './tsconfig.json', intentionallyNotExported: [] }),
      'tsconfig.json': JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: [] }, files: ['index.ts'] }),
      'index.ts': `/**
 * The fixture.
 *
 * @module fixture
 */
export function undocumentedExport(): void {}

/** Links to {@link NoSuchThing}. */
export const linked = 1;

/** Events of nothing. */
export interface FixtureEvents {
  /** Attempt \`attempt\` failed with \`error\`. */
  named: { readonly attempt: number; readonly error: unknown };
  /** Something failed with \`error\`. */
  unnamed: { readonly error: unknown; readonly forgottenField: number };
}
`,
    });
    const { code, output } = (await typedoc(['--emit', 'none'], { options: join(dir, 'typedoc.json') })) as { code: number; output: string };
    const problems = (problemsIn(output) as string[]).join('\n');
    expect(code).not.toBe(0);
    expect(problems).toMatch(/undocumentedExport .*does not have any documentation/);
    expect(problems).toMatch(/NoSuchThing/);
    expect(problems).toMatch(/unnamed\.__type\.forgottenField .*does not have any documentation/);
    // A field the owner's comment names in backticks counts as documented.
    expect(problems).not.toMatch(/named\.__type\.(attempt|error)\b/);
    expect(problems).not.toMatch(/unnamed\.__type\.error\b/);
  }, 60_000);

  it('tells a stale copy of the reference from a fresh one', () => {
    const built = folder({ 'README.md': '# bulwark\n', 'bulwark/classes/A.md': 'A\n', 'bulwark/classes/B.md': 'B\n' });
    expect(compareTrees(built, folder({ 'README.md': '# bulwark\n', 'bulwark/classes/A.md': 'A\n', 'bulwark/classes/B.md': 'B\n' }))).toEqual([]);
    expect(compareTrees(built, folder({ 'README.md': '# bulwark\n', 'bulwark/classes/A.md': 'A (old)\n', 'bulwark/classes/C.md': 'C\n' }))).toEqual([
      'stale: bulwark/classes/A.md',
      'missing: bulwark/classes/B.md',
      'not generated: bulwark/classes/C.md',
    ]);
  });
});
