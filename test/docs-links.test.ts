/**
 * Every relative link in the documentation names a file that exists, and every `#anchor` a
 * heading of its target, slugged the way GitHub does. External links are not fetched.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The Markdown files whose links are checked, relative to the repository's root. */
function documentationFiles(): string[] {
  const walk = (dir: string, keep: (path: string) => boolean): string[] =>
    existsSync(join(root, dir))
      ? readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
          const path = `${dir}/${entry.name}`;
          if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : walk(path, keep);
          return keep(path) ? [path] : [];
        })
      : [];
  const top = ['README.md', 'CONTRIBUTING.md', 'bench/README.md'].filter((path) => existsSync(join(root, path)));
  return [...top, ...walk('docs', (path) => path.endsWith('.md')), ...walk('examples', (path) => path.endsWith('/README.md'))].sort();
}

/** The text outside fenced code blocks and inline code spans, where Markdown finds links and headings. */
function prose(markdown: string): string[] {
  const lines: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker !== undefined) {
      if (fence === undefined) fence = marker;
      else if (marker.startsWith(fence)) fence = undefined;
      lines.push('');
      continue;
    }
    lines.push(fence === undefined ? line.replace(/(`+)[\s\S]*?\1/g, (span) => (span.startsWith('`') ? '' : span)) : '');
  }
  return lines;
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped but `-` and `_`, each space a `-`. */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link reads as its text
    .replace(/<[^>]+>/g, '') // so does inline HTML
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings; a repeated heading gets `-1`, `-2`, … as on GitHub. */
function anchorsOf(file: string): Set<string> {
  const markdown = readFileSync(file, 'utf8');
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  // Headings come from the raw lines (code spans included), outside fenced blocks.
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(`{3,}|~{3,})/.test(line)) inFence = !inFence;
    if (inFence) continue;
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  for (const match of markdown.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(match[1] as string);
  return anchors;
}

/** Each relative link of `file` (an absolute path) that names no file, or no heading of its target. */
export function brokenLinks(file: string): string[] {
  const broken: string[] = [];
  const lines = prose(readFileSync(file, 'utf8'));
  lines.forEach((line, index) => {
    for (const match of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = match[1] as string;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // external: not fetched
      const where = `line ${index + 1}: ${target}`;
      const [pathPart = '', anchor] = target.split('#', 2) as [string, string | undefined];
      const path = pathPart === '' ? file : resolve(dirname(file), decodeURIComponent(pathPart));
      if (!existsSync(path)) {
        broken.push(`${where} (no such file)`);
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      if (statSync(path).isDirectory() || !path.endsWith('.md')) continue; // GitHub anchors lines of code, not headings
      if (!anchorsOf(path).has(decodeURIComponent(anchor))) broken.push(`${where} (no such heading)`);
    }
  });
  return broken;
}

describe('links in the documentation', () => {
  const files = documentationFiles();

  it('checks the README, the contributing guide, every guide, the benchmarks and the examples', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'CONTRIBUTING.md', 'docs/README.md', 'bench/README.md', 'examples/demo/README.md']));
  });

  it.each(files)('%s: every relative link names a file that exists, and every anchor a heading of it', (file) => {
    expect(brokenLinks(join(root, file))).toEqual([]);
  });
});

describe('the link checker', () => {
  const fixture = fileURLToPath(new URL('./fixtures/docs-links/broken.md', import.meta.url));

  it('reports each broken link of a fixture, and nothing else', () => {
    expect(brokenLinks(fixture)).toEqual([
      'line 17: missing.md (no such file)',
      'line 18: #no-such-heading (no such heading)',
      'line 19: target.md#not-there (no such heading)',
      'line 20: #Good-Links (no such heading)',
    ]);
    expect(relative(root, fixture)).toBe(join('test', 'fixtures', 'docs-links', 'broken.md'));
  });

  it.each([
    ['Circuit breaker: `CircuitBreaker` and `CircuitBreakerGroup`', 'circuit-breaker-circuitbreaker-and-circuitbreakergroup'],
    ['HTTP clients: `bulwark/fetch`', 'http-clients-bulwarkfetch'],
    ['Fewer round trips: a lease of permits', 'fewer-round-trips-a-lease-of-permits'],
    ['Express 5 and Connect', 'express-5-and-connect'],
    ['node:http', 'nodehttp'],
    ['Throughput: 100,000 tasks submitted at once', 'throughput-100000-tasks-submitted-at-once'],
    ['A [linked](https://example.com) heading', 'a-linked-heading'],
    ['snake_case and kebab-case', 'snake_case-and-kebab-case'],
  ])('slugs %j as GitHub does: %s', (heading, expected) => {
    expect(slug(heading)).toBe(expected);
  });
});
