// Checks the API reference, as `npm run docs:check` and test/docs-reference.test.ts do:
// - TypeDoc (typedoc.json) builds it into a temporary folder with its validation on and every
//   warning an error: each export documented, each `{@link}` resolving, no type the reference
//   names left out of it;
// - the copy committed in docs/api/ is the one it builds (else: `npm run docs:api`);
// - every `@example` in src/ compiles against the public API (scripts/docs-examples.mjs).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { checkExamples } from './docs-examples.mjs';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TYPEDOC = join(ROOT, 'node_modules/typedoc/bin/typedoc');
export const REFERENCE = 'docs/api';

/**
 * Runs TypeDoc with the options file `options` (typedoc.json, or one that extends it) and
 * `args`, which override it (`--out`). Resolves to its exit code and everything it printed.
 */
export async function typedoc(args, { cwd = ROOT, options = join(ROOT, 'typedoc.json') } = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [TYPEDOC, '--options', options, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    return { code: typeof error.code === 'number' ? error.code : 1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` || String(error) };
  }
}

/** The warnings and errors in TypeDoc's output, one a line. */
export function problemsIn(output) {
  return output.split('\n').filter((line) => /\[(warning|error)\]/.test(line)).map((line) => line.trim());
}

/** Every file under `dir`, relative to it, sorted; none when it does not exist. */
function filesUnder(dir) {
  const files = [];
  const walk = (folder) => {
    let entries;
    try {
      entries = readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.push(relative(dir, path).split('\\').join('/'));
    }
  };
  walk(dir);
  return files.sort();
}

/** The files that differ between two folders: missing from `actual`, extra in it, or with other contents. */
export function compareTrees(expected, actual) {
  const want = filesUnder(expected);
  const have = new Set(filesUnder(actual));
  const differences = [];
  for (const file of want) {
    if (!have.has(file)) differences.push(`missing: ${file}`);
    else if (readFileSync(join(expected, file), 'utf8') !== readFileSync(join(actual, file), 'utf8')) differences.push(`stale: ${file}`);
    have.delete(file);
  }
  for (const file of have) differences.push(`not generated: ${file}`);
  return differences;
}

/**
 * Builds the reference into a temporary folder and compares it with the committed one.
 * Resolves to TypeDoc's exit code and problems, the files of docs/api/ that differ, and how
 * many pages it has.
 */
export async function checkReference({ root = ROOT } = {}) {
  const out = mkdtempSync(join(tmpdir(), 'bulwark-api-'));
  try {
    const { code, output } = await typedoc(['--out', out], { cwd: root });
    return { code, problems: problemsIn(output), differences: code === 0 ? compareTrees(out, resolve(root, REFERENCE)) : [], pages: filesUnder(out).length };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let failed = false;
  const started = Date.now();
  const reference = await checkReference();
  if (reference.code !== 0 || reference.problems.length > 0) {
    failed = true;
    console.error(`TypeDoc failed (exit ${reference.code}):\n${reference.problems.join('\n')}`);
  } else if (reference.differences.length > 0) {
    failed = true;
    console.error(`${REFERENCE}/ is not what the code gives: run \`npm run docs:api\`.\n${reference.differences.join('\n')}`);
  } else {
    console.log(`${REFERENCE}/: ${reference.pages} pages, up to date, every export documented and every link resolved (${Date.now() - started} ms)`);
  }
  const examplesStarted = Date.now();
  const { count, problems } = checkExamples({ root: ROOT });
  for (const { file, line, message } of problems) console.error(`${file}:${line}: ${message}`);
  console.log(`${count} @example code blocks compiled: ${problems.length} problem(s) (${Date.now() - examplesStarted} ms)`);
  if (problems.length > 0) failed = true;
  process.exitCode = failed ? 1 : 0;
}
