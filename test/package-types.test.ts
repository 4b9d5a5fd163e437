import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked, root } from './fixtures/packed.js';

// The repository compiles with skipLibCheck and its examples import ../src, so nothing else
// type-checks the .d.ts files users get. Here the consumers of fixtures/consumers/ compile
// against the packed tarball, strict and with skipLibCheck: false, under each module setting
// and with each TypeScript version installed as a dev dependency.

const run = promisify(execFile);
const fixtures = join(root, 'test', 'fixtures', 'consumers');

/** The TypeScript packages of node_modules, oldest first. */
const compilers = ['typescript-5.0', 'typescript-5.4', 'typescript', 'typescript-6', 'typescript-7'].map((name) => {
  const { version } = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return { name, version, major: Number(version.split('.')[0]) };
});
type Compiler = (typeof compilers)[number];

// @types/node declares fetch, AbortSignal, Request and Response: the types must need no DOM.
const nodeService = { lib: ['ES2022'], types: ['node'] };
// And no Node types either.
const browserApp = { lib: ['ES2022', 'DOM'], types: [] };

interface Consumer {
  readonly name: string;
  /** Copies of fixtures/consumers/*.ts; under NodeNext, .mts makes a file ESM and .cts CommonJS. */
  readonly files: readonly string[];
  /** What every entry must resolve to: `.d.ts` is the `import` side of `exports`, `.d.cts` the `require` side. */
  readonly declarations: readonly string[];
  readonly options: (compiler: Compiler) => Record<string, unknown>;
}

// Each module setting once, with the libs of the kind of project that uses it: the .d.ts and
// .d.cts differ in their import paths only, so a global that one lib setup lacks shows under any
// setting, and each more project costs every TypeScript 5 and 6 a ~2 s check of its libs.
const consumers: readonly Consumer[] = [
  {
    name: 'Node service, NodeNext',
    files: ['every-entry.mts', 'every-entry.cts', 'node-http.mts', 'node-http.cts'],
    declarations: ['.d.ts', '.d.cts'],
    options: () => ({ module: 'NodeNext', moduleResolution: 'NodeNext', ...nodeService }),
  },
  {
    // Without moduleResolution, TypeScript 5 resolves `module: "CommonJS"` as node10, which
    // ignores `exports`: the root resolves through `types`, the subpaths through `typesVersions`.
    // TypeScript 6 resolves it as bundler and takes node10 only with ignoreDeprecations.
    // TypeScript 7 has no node10 at all; the nearest it accepts is this same config, which it
    // resolves as bundler with the `require` condition.
    name: 'Node service, node10',
    files: ['every-entry.ts', 'node-http.ts'],
    declarations: ['.d.cts'],
    options: ({ major }) => ({
      module: 'CommonJS',
      ...(major === 6 ? { moduleResolution: 'node10', ignoreDeprecations: '6.0' } : {}),
      ...nodeService,
    }),
  },
  {
    name: 'browser app, bundler',
    files: ['every-entry.ts'],
    declarations: ['.d.ts'],
    // Not `module: "preserve"`: TypeScript 5.0 lacks it (5.4+).
    options: () => ({ module: 'ESNext', moduleResolution: 'Bundler', ...browserApp }),
  },
];
const cases = compilers.flatMap((compiler) => consumers.map((consumer) => [`TypeScript ${compiler.version}, ${consumer.name}`, compiler, consumer] as const));

/** The declaration files of the entry points (not of the chunks they share), as tsc --listFiles prints them. */
const entryDeclaration = /[\\/]node_modules[\\/]bulwark[\\/]dist[\\/]((?:index|health|prometheus|otel|chaos|fetch|redis)\.d\.c?ts)$/;
const entries = ['index', 'health', 'prometheus', 'otel', 'chaos', 'fetch', 'redis'];

/** Runs `task` when a core is free: a tsc is one thread, and more of them than cores only slow each other down. */
const limit = ((slots: number) => {
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (slots > 0) slots--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else slots++;
    }
  };
})(availableParallelism());

/** tsc's exit code and output; a failed run resolves too, so its output can be shown. */
async function tsc(compiler: Compiler, project: string): Promise<{ exitCode: unknown; stdout: string; stderr: string }> {
  const bin = join(root, 'node_modules', compiler.name, 'bin', 'tsc');
  const args = [bin, '-p', project, '--listFiles', '--pretty', 'false'];
  // NODE_OPTIONS cleared: whatever the test runner put there is not for tsc.
  const options = { cwd: project, timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } };
  return limit(() => run(process.execPath, args, options)).then(
    ({ stdout, stderr }) => ({ exitCode: 0, stdout, stderr }),
    (error: { code?: number | string | null; signal?: string | null; stdout?: string; stderr?: string }) => ({
      exitCode: error.code ?? error.signal,
      stdout: error.stdout ?? '',
      stderr: error.stderr ?? '',
    }),
  );
}

let installed: { dir: string; remove: () => void };

beforeAll(async () => {
  installed = await installPacked(['@types/node', 'undici-types', '@opentelemetry/api']);
  // No `type`: .mts and .cts are ESM and CommonJS whatever it says, and bundler and node10 ignore it.
  writeFileSync(join(installed.dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
}, 60_000);

afterAll(() => installed?.remove());

describe('the packed types compile in a strict consumer (skipLibCheck: false)', () => {
  it.concurrent.each(cases)(
    '%s',
    async (_name, compiler, consumer) => {
      const project = join(installed.dir, `${compiler.name} ${consumer.name}`.replace(/\W+/g, '-'));
      mkdirSync(project);
      for (const file of consumer.files) copyFileSync(join(fixtures, file.replace(/\.[mc]ts$/, '.ts')), join(project, file));
      const compilerOptions = {
        target: 'ES2022',
        strict: true,
        // Stricter than `strict` about optional properties, in declaration files too; the library compiles with it.
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        noEmit: true,
        ...consumer.options(compiler),
      };
      writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*'] }, null, 2));

      const { exitCode, stdout, stderr } = await tsc(compiler, project);
      // --listFiles prints absolute paths; diagnostics name files relative to the project.
      const lines = stdout.split('\n').filter((line) => line.trim() !== '');
      const diagnostics = [...lines.filter((line) => !isAbsolute(line)), stderr.trim()].filter(Boolean).join('\n');
      expect({ exitCode, diagnostics }, `tsc -p ${project}`).toEqual({ exitCode: 0, diagnostics: '' });

      const resolved = lines.flatMap((line) => entryDeclaration.exec(line)?.[1] ?? []).sort();
      const expected = entries.flatMap((entry) => consumer.declarations.map((extension) => entry + extension)).sort();
      expect(resolved, 'the entry declarations the consumer compiled').toEqual(expected);
    },
    120_000,
  );
});
