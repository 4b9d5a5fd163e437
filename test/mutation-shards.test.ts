import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHARDS, matchesGlob, matrix, missingReports, shardsOf } from '../scripts/mutation-shards.mjs';

const root = new URL('..', import.meta.url).pathname;
const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })
  .filter((path) => path.endsWith('.ts'))
  .map((path) => `src/${path.split('\\').join('/')}`);

describe('scripts/mutation-shards.mjs', () => {
  it('puts every file of src/ in exactly one shard, so the weekly run mutates each once', () => {
    expect(sources.length).toBeGreaterThan(80);
    const notInOne = sources.map((file) => [file, shardsOf(file)] as const).filter(([, shards]) => shards.length !== 1);
    expect(notInOne).toEqual([]);
  });

  it('has no glob that matches nothing (a renamed folder would leave its files to no shard)', () => {
    for (const { mutate } of SHARDS) {
      for (const glob of mutate) expect(sources.some((file) => matchesGlob(glob, file)), glob).toBe(true);
    }
  });

  it('matches * within a folder and **/ across any depth, as Stryker does for these globs', () => {
    expect(matchesGlob('src/*.ts', 'src/retry.ts')).toBe(true);
    expect(matchesGlob('src/*.ts', 'src/engine/policy.ts')).toBe(false);
    expect(matchesGlob('src/*.ts', 'src/retry.tsx')).toBe(false);
    expect(matchesGlob('src/redis/**/*.ts', 'src/redis/breaker.ts')).toBe(true);
    expect(matchesGlob('src/redis/**/*.ts', 'src/redis/a/b/c.ts')).toBe(true);
    expect(matchesGlob('src/redis/**/*.ts', 'src/redis-x/breaker.ts')).toBe(false);
    expect(matchesGlob('src/*.ts', 'src/aXts')).toBe(false);
  });

  it('gives the workflow a matrix whose mutate is the comma-separated list --mutate takes', () => {
    expect(matrix().include).toContainEqual({ name: 'redis', mutate: 'src/redis/**/*.ts' });
    expect(matrix().include.map((job) => job.name)).toEqual(SHARDS.map((shard) => shard.name));
  });

  it('names the shards whose report is missing from the downloaded artifacts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-shards-'));
    try {
      for (const { name } of SHARDS.slice(1)) {
        mkdirSync(join(dir, `mutation-${name}`));
        writeFileSync(join(dir, `mutation-${name}`, 'mutation.json'), '{}');
      }
      expect(missingReports(dir)).toEqual([SHARDS[0]!.name]);
      mkdirSync(join(dir, `mutation-${SHARDS[0]!.name}`));
      writeFileSync(join(dir, `mutation-${SHARDS[0]!.name}`, 'mutation.json'), '{}');
      expect(missingReports(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is what the workflow runs', () => {
    const workflow = readFileSync(join(root, '.github/workflows/mutation.yml'), 'utf8');
    expect(workflow).toContain('node scripts/mutation-shards.mjs');
    expect(workflow).toContain('--mutate "${{ matrix.mutate }}"');
    expect(workflow).toContain('node scripts/mutation-shards.mjs --check shards');
  });
});
