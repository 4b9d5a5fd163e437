/**
 * The layout that shows the architecture, kept: the core never imports a subpath entry, a
 * subpath takes from the core only types (and what src/shared/ holds), no module imports
 * itself through a cycle, and no file grows past one concern.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src', import.meta.url));
const SUBPATHS = ['health', 'prometheus', 'otel', 'chaos', 'fetch', 'redis'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

interface Import {
  readonly target: string;
  /** `import type …` or `export type … from`: erased, so it carries no code. */
  readonly typeOnly: boolean;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gm)].map((match) => ({
    target: normalize(join(dirname(file), (match[3] as string).replace(/\.js$/, '.ts'))),
    typeOnly: match[2] !== undefined,
  }));
}

const files = sourceFiles(src);
const graph = new Map(files.map((file) => [file, importsOf(file)]));
const area = (file: string): string => relative(src, file).split('/')[0] as string;

describe('the layout of src/', () => {
  it('has no file over about 400 lines', () => {
    const long = files.filter((file) => readFileSync(file, 'utf8').split('\n').length > 420).map((file) => relative(src, file));
    expect(long).toEqual([]);
  });

  it('never imports a subpath entry from the core, nor code of the core into a subpath (types and src/shared/ only)', () => {
    const crossings: string[] = [];
    for (const [file, imports] of graph) {
      const from = area(file);
      for (const { target, typeOnly } of imports) {
        const to = area(target);
        if (!SUBPATHS.includes(from) && SUBPATHS.includes(to)) crossings.push(`${relative(src, file)} → ${relative(src, target)}`);
        if (SUBPATHS.includes(from) && to !== from && to !== 'shared' && !typeOnly) crossings.push(`${relative(src, file)} → ${relative(src, target)}`);
      }
    }
    expect(crossings).toEqual([]);
  });

  it('has no import cycle through code (type-only imports are erased and may loop)', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]): void => {
      state.set(file, 'visiting');
      for (const { target, typeOnly } of graph.get(file) ?? []) {
        if (typeOnly || !graph.has(target)) continue;
        if (state.get(target) === 'visiting') cycles.push([...path.slice(path.indexOf(target)), target].map((f) => relative(src, f)).join(' → '));
        else if (state.get(target) === undefined) visit(target, [...path, target]);
      }
      state.set(file, 'done');
    };
    for (const file of files) if (state.get(file) === undefined) visit(file, [file]);
    expect(cycles).toEqual([]);
  });

  it('keeps src/shared/ free of the rest of src/ (the subpaths take it whole)', () => {
    const outward = [...graph].flatMap(([file, imports]) =>
      area(file) === 'shared' ? imports.filter(({ target, typeOnly }) => !typeOnly && area(target) !== 'shared').map(({ target }) => `${relative(src, file)} → ${relative(src, target)}`) : [],
    );
    expect(outward).toEqual([]);
  });
});
