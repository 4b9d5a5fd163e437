import express from 'express';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  MetricsRegistry,
  compose,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type MetricsSnapshot,
  type PolicyKind,
  type PolicyMetricsSnapshot,
} from '../../src/index.js';
import {
  PROMETHEUS_CONTENT_TYPE,
  prometheusFetchHandler,
  prometheusHandler,
  renderPrometheus,
  type PrometheusOptions,
} from '../../src/prometheus/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { serve } from '../fixtures/http.js';
import { deferred, flush } from '../fixtures/promises.js';
import { DEFAULT_BOUNDS_MS, policySnapshot } from '../fixtures/snapshots.js';

// ---------------------------------------------------------------------------------------------
// A strict parser of the text exposition format 0.0.4. It accepts only what the format allows
// and checks what Prometheus checks on a scrape: metadata before samples, one block per family,
// no duplicate series, histograms with ascending cumulative buckets whose +Inf equals _count.
// ---------------------------------------------------------------------------------------------

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  help: string | undefined;
  type: string | undefined;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;
const TYPES = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

function parseFloatStrict(text: string, where: string): number {
  if (!FLOAT.test(text)) throw new Error(`${where}: ${JSON.stringify(text)} is not a float`);
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  return Number(text);
}

function unescape(text: string, allowQuote: boolean, where: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char !== '\\') {
      out += char;
      continue;
    }
    const next = text[++i];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else if (next === '"' && allowQuote) out += '"';
    else throw new Error(`${where}: invalid escape \\${next ?? ''}`);
  }
  return out;
}

function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  return JSON.stringify([name, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))]);
}

function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  if (text === '') return families;
  if (!text.endsWith('\n')) throw new Error('the text must end with a line feed');
  const lines = text.slice(0, -1).split('\n');
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, where: string): Family => {
    if (current !== name) {
      if (closed.has(name)) throw new Error(`${where}: family ${name} appears in two places`);
      if (current !== undefined) closed.add(current);
      current = name;
    }
    let family = families.get(name);
    if (family === undefined) {
      family = { name, help: undefined, type: undefined, samples: [] };
      families.set(name, family);
    }
    return family;
  };
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line === '') return; // the format ignores empty lines
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7);
      const name = METRIC_NAME.exec(rest)?.[0];
      if (name === undefined || (rest.length > name.length && rest[name.length] !== ' ')) throw new Error(`${where}: bad metric name`);
      const family = enter(name, where);
      if (family.samples.length > 0) throw new Error(`${where}: metadata after samples of ${name}`);
      const value = rest.slice(name.length + 1);
      if (line.startsWith('# HELP ')) {
        if (family.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        family.help = unescape(value, false, where);
      } else {
        if (family.type !== undefined) throw new Error(`${where}: second TYPE for ${name}`);
        if (!TYPES.includes(value)) throw new Error(`${where}: unknown type ${JSON.stringify(value)}`);
        family.type = value;
      }
      return;
    }
    if (line.startsWith('#')) throw new Error(`${where}: unexpected comment`);
    const name = METRIC_NAME.exec(line)?.[0];
    if (name === undefined) throw new Error(`${where}: bad metric name`);
    let at = name.length;
    const labels: Record<string, string> = {};
    if (line[at] === '{') {
      at++;
      while (line[at] !== '}') {
        const label = LABEL_NAME.exec(line.slice(at))?.[0];
        if (label === undefined) throw new Error(`${where}: bad label name at column ${at}`);
        at += label.length;
        if (line.slice(at, at + 2) !== '="') throw new Error(`${where}: expected =" after ${label}`);
        at += 2;
        let raw = '';
        while (line[at] !== '"') {
          if (at >= line.length) throw new Error(`${where}: unterminated label value`);
          if (line[at] === '\\') raw += line[at++];
          raw += line[at++];
        }
        at++;
        if (Object.hasOwn(labels, label)) throw new Error(`${where}: label ${label} twice`);
        labels[label] = unescape(raw, true, where);
        if (line[at] === ',') at++;
        else if (line[at] !== '}') throw new Error(`${where}: expected , or } at column ${at}`);
      }
      at++;
    }
    if (line[at] !== ' ') throw new Error(`${where}: expected one space before the value`);
    const fields = line.slice(at + 1).split(' ');
    if (fields.length > 2 || fields.some((field) => field === '')) throw new Error(`${where}: bad value or timestamp`);
    const value = parseFloatStrict(fields[0] ?? '', where);
    if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) throw new Error(`${where}: bad timestamp`);
    // The family of a sample: its own name, or the histogram/summary it is a part of.
    let familyName = name;
    if (!families.get(name)?.type) {
      for (const suffix of ['_bucket', '_sum', '_count']) {
        const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined;
        const type = base === undefined ? undefined : families.get(base)?.type;
        if (type === 'histogram' || (type === 'summary' && suffix !== '_bucket')) familyName = base ?? name;
      }
    }
    const family = enter(familyName, where);
    if (family.type === undefined) throw new Error(`${where}: sample of ${familyName} before its TYPE`);
    const key = seriesKey(name, labels);
    if (seen.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    seen.add(key);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) {
    if (family.type === 'counter') {
      for (const sample of family.samples) {
        if (sample.name !== family.name) throw new Error(`counter ${family.name} has a sample named ${sample.name}`);
        if (!(sample.value >= 0)) throw new Error(`counter ${family.name} has a negative or NaN value`);
      }
    }
    if (family.type === 'histogram') checkHistogram(family);
  }
  return families;
}

function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: { le: number; count: number }[]; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = seriesKey('', rest);
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}_bucket without le`);
      group.buckets.push({ le: parseFloatStrict(le, `${family.name} le`), count: sample.value });
    } else if (le !== undefined) {
      throw new Error(`${sample.name} has an le label`);
    } else if (sample.name === `${family.name}_sum`) {
      group.sum = sample.value;
    } else if (sample.name === `${family.name}_count`) {
      group.count = sample.value;
    } else {
      throw new Error(`histogram ${family.name} has a sample named ${sample.name}`);
    }
  }
  for (const [key, group] of groups) {
    if (group.sum === undefined || group.count === undefined) throw new Error(`histogram ${family.name} ${key} lacks _sum or _count`);
    const last = group.buckets[group.buckets.length - 1];
    if (last === undefined || last.le !== Infinity) throw new Error(`histogram ${family.name} ${key} lacks le="+Inf"`);
    if (last.count !== group.count) throw new Error(`histogram ${family.name} ${key}: +Inf bucket ${last.count} ≠ _count ${group.count}`);
    group.buckets.forEach((bucket, at) => {
      const previous = group.buckets[at - 1];
      if (previous !== undefined && !(bucket.le > previous.le)) throw new Error(`histogram ${family.name} ${key}: le not ascending`);
      if (previous !== undefined && bucket.count < previous.count) throw new Error(`histogram ${family.name} ${key}: buckets not cumulative`);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// What the exposition must hold for a snapshot, written from the documented table of families.
// ---------------------------------------------------------------------------------------------

const COUNTER_TABLE: readonly [family: string, field: keyof PolicyMetricsSnapshot, kinds: readonly PolicyKind[] | 'all'][] = [
  ['calls_total', 'calls', 'all'],
  ['successes_total', 'successes', 'all'],
  ['failures_total', 'failures', 'all'],
  ['rejections_total', 'rejections', ['circuit-breaker', 'bulkhead']],
  ['timeouts_total', 'timeouts', ['timeout']],
  ['retries_total', 'retries', ['retry']],
  ['fallbacks_total', 'fallbacks', ['fallback']],
];

function expectedSamples(snapshot: MetricsSnapshot, prefix = 'bulwark_', constantLabels: Record<string, string> = {}): Map<string, { type: string; samples: Sample[] }> {
  const out = new Map<string, { type: string; samples: Sample[] }>();
  const add = (family: string, type: string, sample: Sample): void => {
    const entry = out.get(prefix + family) ?? { type, samples: [] };
    entry.samples.push({ ...sample, name: prefix + sample.name });
    out.set(prefix + family, entry);
  };
  for (const [family, field, kinds] of COUNTER_TABLE) {
    for (const policy of snapshot.policies) {
      if (kinds !== 'all' && !kinds.includes(policy.kind)) continue;
      add(family, 'counter', { name: family, labels: { policy: policy.name, kind: policy.kind, ...constantLabels }, value: policy[field] as number });
    }
  }
  for (const policy of snapshot.policies) {
    const labels = { policy: policy.name, kind: policy.kind, ...constantLabels };
    for (const bucket of policy.latency.buckets) {
      const le = bucket.le === Infinity || bucket.le === null ? '+Inf' : String(bucket.le / 1000);
      add('call_duration_seconds', 'histogram', { name: 'call_duration_seconds_bucket', labels: { ...labels, le }, value: bucket.count });
    }
    add('call_duration_seconds', 'histogram', { name: 'call_duration_seconds_sum', labels, value: policy.latency.sum / 1000 });
    add('call_duration_seconds', 'histogram', { name: 'call_duration_seconds_count', labels, value: policy.latency.count });
  }
  for (const policy of snapshot.policies) {
    const labels = { policy: policy.name, kind: policy.kind, ...constantLabels };
    if (policy.state !== undefined) {
      for (const state of ['closed', 'open', 'half-open', 'isolated']) {
        add('circuit_state', 'gauge', { name: 'circuit_state', labels: { ...labels, state }, value: state === policy.state ? 1 : 0 });
      }
    }
    if (policy.failureRate !== undefined) add('circuit_failure_ratio', 'gauge', { name: 'circuit_failure_ratio', labels, value: policy.failureRate });
    if (policy.slowCallRate !== undefined) add('circuit_slow_call_ratio', 'gauge', { name: 'circuit_slow_call_ratio', labels, value: policy.slowCallRate });
    if (policy.active !== undefined) add('bulkhead_active_calls', 'gauge', { name: 'bulkhead_active_calls', labels, value: policy.active });
    if (policy.queued !== undefined) add('bulkhead_queued_calls', 'gauge', { name: 'bulkhead_queued_calls', labels, value: policy.queued });
  }
  return out;
}

function sortedSamples(samples: readonly Sample[]): Sample[] {
  return [...samples].sort((a, b) => (seriesKey(a.name, a.labels) < seriesKey(b.name, b.labels) ? -1 : 1));
}

/** Every family and every value of the text against the snapshot: nothing missing, nothing extra. */
function expectMatchesSnapshot(text: string, snapshot: MetricsSnapshot, prefix?: string, constantLabels?: Record<string, string>): Map<string, Family> {
  const parsed = parseExposition(text);
  const expected = expectedSamples(snapshot, prefix, constantLabels);
  expect([...parsed.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, { type, samples }] of expected) {
    const family = parsed.get(name);
    expect(family?.type, name).toBe(type);
    expect(family?.help, name).toMatch(/\S/);
    expect(sortedSamples(family?.samples ?? []), name).toEqual(sortedSamples(samples));
  }
  return parsed;
}

/** Durations (ms) per policy, so the hand-made snapshot and prom-client see the same calls. */
const DURATIONS: Readonly<Record<string, readonly number[]>> = {
  fallback: [0.5, 3, 3, 12, 250, 1_000, 12_000],
  'circuit-breaker': [0.5, 3, 3, 12, 250, 1_000],
  retry: [1, 2.5, 240, 1_000],
  timeout: [1, 2.5, 120, 1_000, 1_000],
  bulkhead: [0.2, 0.2, 7],
};

function handMadeSnapshot(): MetricsSnapshot {
  return {
    timestamp: 1_700_000_000_000,
    policies: [
      policySnapshot('payments', 'fallback', { calls: 9, successes: 8, failures: 1, fallbacks: 3 }, DURATIONS.fallback),
      policySnapshot('payments', 'circuit-breaker', { calls: 9, successes: 5, failures: 2, rejections: 2, state: 'open', failureRate: 0.25, slowCallRate: 0.125 }, DURATIONS['circuit-breaker']),
      policySnapshot('payments', 'retry', { calls: 7, successes: 5, failures: 2, retries: 4 }, DURATIONS.retry),
      policySnapshot('payments', 'timeout', { calls: 11, successes: 8, failures: 3, timeouts: 2 }, DURATIONS.timeout),
      policySnapshot('search', 'bulkhead', { calls: 5, successes: 3, failures: 0, rejections: 1, active: 2, queued: 1 }, DURATIONS.bulkhead),
    ],
  };
}

/** The same metrics built with prom-client's own Registry, Counter, Gauge and Histogram. */
async function renderWithPromClient(
  snapshot: MetricsSnapshot,
  durationsMs: (policy: PolicyMetricsSnapshot) => readonly number[],
  { prefix = 'bulwark_', constantLabels = {} }: { prefix?: string; constantLabels?: Record<string, string> } = {},
  bounds: readonly number[] = DEFAULT_BOUNDS_MS,
): Promise<string> {
  const registry = new Registry();
  registry.setDefaultLabels(constantLabels);
  const registers = [registry];
  const labelNames = ['policy', 'kind'];
  for (const [family, field, kinds] of COUNTER_TABLE) {
    const counter = new Counter({ name: prefix + family, help: family, labelNames, registers });
    for (const policy of snapshot.policies) {
      if (kinds === 'all' || kinds.includes(policy.kind)) counter.inc({ policy: policy.name, kind: policy.kind }, policy[field] as number);
    }
  }
  const histogram = new Histogram({ name: `${prefix}call_duration_seconds`, help: 'duration', labelNames, buckets: bounds.map((ms) => ms / 1000), registers });
  for (const policy of snapshot.policies) {
    const labels = { policy: policy.name, kind: policy.kind };
    histogram.zero(labels);
    for (const ms of durationsMs(policy)) histogram.observe(labels, ms / 1000);
  }
  const state = new Gauge({ name: `${prefix}circuit_state`, help: 'state', labelNames: [...labelNames, 'state'], registers });
  const gauges = {
    failureRate: new Gauge({ name: `${prefix}circuit_failure_ratio`, help: 'f', labelNames, registers }),
    slowCallRate: new Gauge({ name: `${prefix}circuit_slow_call_ratio`, help: 's', labelNames, registers }),
    active: new Gauge({ name: `${prefix}bulkhead_active_calls`, help: 'a', labelNames, registers }),
    queued: new Gauge({ name: `${prefix}bulkhead_queued_calls`, help: 'q', labelNames, registers }),
  };
  for (const policy of snapshot.policies) {
    const labels = { policy: policy.name, kind: policy.kind };
    if (policy.state !== undefined) {
      for (const name of ['closed', 'open', 'half-open', 'isolated']) state.set({ ...labels, state: name }, name === policy.state ? 1 : 0);
    }
    for (const field of ['failureRate', 'slowCallRate', 'active', 'queued'] as const) {
      const value = policy[field];
      if (value !== undefined) gauges[field].set(labels, value);
    }
  }
  return registry.metrics();
}

/** Ours and prom-client's, parsed: the same families, types and series; sums equal to float precision. */
function expectSameAsPromClient(ours: string, theirs: string): void {
  const a = parseExposition(ours);
  // prom-client writes metadata for a family it has no series of; an empty family says nothing.
  const b = new Map([...parseExposition(theirs)].filter(([, family]) => family.samples.length > 0));
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, family] of a) {
    const other = b.get(name);
    expect(other?.type, name).toBe(family.type);
    const mine = sortedSamples(family.samples);
    const reference = sortedSamples(other?.samples ?? []);
    expect(mine.map(({ name: n, labels }) => [n, labels]), name).toEqual(reference.map(({ name: n, labels }) => [n, labels]));
    mine.forEach((sample, at) => {
      const value = reference[at]?.value ?? NaN;
      if (sample.name.endsWith('_sum')) expect(sample.value, `${sample.name} ${JSON.stringify(sample.labels)}`).toBeCloseTo(value, 9);
      else expect(sample.value, `${sample.name} ${JSON.stringify(sample.labels)}`).toBe(value);
    });
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('renderPrometheus', () => {
  it('writes every family once, with every value of the snapshot', () => {
    const snapshot = handMadeSnapshot();
    const text = renderPrometheus(snapshot);
    const parsed = expectMatchesSnapshot(text, snapshot);
    expect(parsed.get('bulwark_rejections_total')?.samples.map((s) => s.labels.kind)).toEqual(['circuit-breaker', 'bulkhead']);
    expect(parsed.get('bulwark_timeouts_total')?.samples).toEqual([{ name: 'bulwark_timeouts_total', labels: { policy: 'payments', kind: 'timeout' }, value: 2 }]);
  });

  it('writes the format byte for byte: HELP, TYPE, labels, seconds, +Inf', () => {
    const text = renderPrometheus({
      timestamp: 0,
      policies: [
        policySnapshot('db', 'circuit-breaker', { calls: 3, successes: 1, failures: 1, rejections: 1, state: 'half-open' }, [],),
      ].map((policy) => ({ ...policy, latency: { count: 2, sum: 1_500, buckets: [{ le: 1_000, count: 1 }, { le: Infinity, count: 2 }], p50: 0, p90: 0, p99: 0 } })),
    });
    expect(text).toBe(
      [
        '# HELP bulwark_calls_total Calls that entered the policy.',
        '# TYPE bulwark_calls_total counter',
        'bulwark_calls_total{policy="db",kind="circuit-breaker"} 3',
        '# HELP bulwark_successes_total Calls that left the policy with a value (a fallback\'s answer included).',
        '# TYPE bulwark_successes_total counter',
        'bulwark_successes_total{policy="db",kind="circuit-breaker"} 1',
        "# HELP bulwark_failures_total Calls that left the policy with an error, not counting the policy's own refusals.",
        '# TYPE bulwark_failures_total counter',
        'bulwark_failures_total{policy="db",kind="circuit-breaker"} 1',
        '# HELP bulwark_rejections_total Calls the policy refused without running them: an open circuit, a full bulkhead, a queue wait past its timeout.',
        '# TYPE bulwark_rejections_total counter',
        'bulwark_rejections_total{policy="db",kind="circuit-breaker"} 1',
        '# HELP bulwark_call_duration_seconds How long calls took in the policy, in seconds, from entering it to its outcome.',
        '# TYPE bulwark_call_duration_seconds histogram',
        'bulwark_call_duration_seconds_bucket{policy="db",kind="circuit-breaker",le="1"} 1',
        'bulwark_call_duration_seconds_bucket{policy="db",kind="circuit-breaker",le="+Inf"} 2',
        'bulwark_call_duration_seconds_sum{policy="db",kind="circuit-breaker"} 1.5',
        'bulwark_call_duration_seconds_count{policy="db",kind="circuit-breaker"} 2',
        '# HELP bulwark_circuit_state The state of the circuit breaker: 1 for the current state, 0 for the others.',
        '# TYPE bulwark_circuit_state gauge',
        'bulwark_circuit_state{policy="db",kind="circuit-breaker",state="closed"} 0',
        'bulwark_circuit_state{policy="db",kind="circuit-breaker",state="open"} 0',
        'bulwark_circuit_state{policy="db",kind="circuit-breaker",state="half-open"} 1',
        'bulwark_circuit_state{policy="db",kind="circuit-breaker",state="isolated"} 0',
        '',
      ].join('\n'),
    );
  });

  it('matches prom-client built from the same counts and the same call durations', async () => {
    const snapshot = handMadeSnapshot();
    const durations = (policy: PolicyMetricsSnapshot): readonly number[] => DURATIONS[policy.kind === 'bulkhead' ? 'bulkhead' : policy.kind] ?? [];
    expectSameAsPromClient(renderPrometheus(snapshot), await renderWithPromClient(snapshot, durations));
    const options = { prefix: 'svc_', constantLabels: { service: 'checkout', region: 'eu-west-1' } };
    expectSameAsPromClient(renderPrometheus(snapshot, options), await renderWithPromClient(snapshot, durations, options));
  });

  it('escapes hostile label values so they read back unchanged, as prom-client writes them', async () => {
    const hostile = ['quote " in the name', 'back\\slash and \\" both', 'line\nfeed', 'trailing backslash \\', '}{=,"', 'ünïcødé 💥 名前', '\\n is not a newline', ''];
    const snapshot: MetricsSnapshot = {
      timestamp: 0,
      policies: hostile.map((name) => policySnapshot(name, 'circuit-breaker', { calls: 1, state: 'closed' }, [3])),
    };
    const constantLabels = { service: 'evil "svc"\n\\' };
    const text = renderPrometheus(snapshot, { constantLabels });
    expect(text.split('\n').filter((line) => line.startsWith('bulwark_calls_total'))).toHaveLength(hostile.length); // no raw line feed split a line
    const parsed = expectMatchesSnapshot(text, snapshot, 'bulwark_', constantLabels);
    expect(parsed.get('bulwark_calls_total')?.samples.map((sample) => sample.labels.policy)).toEqual(hostile);
    expect(text).toContain('policy="quote \\" in the name"');
    expect(text).toContain('policy="back\\\\slash and \\\\\\" both"');
    expect(text).toContain('policy="line\\nfeed"');
    expect(text).toContain('service="evil \\"svc\\"\\n\\\\"');
    expectSameAsPromClient(text, await renderWithPromClient(snapshot, () => [3], { constantLabels }));
  });

  it('takes a snapshot that went through JSON (le: null) or says "+Inf", and gives the same text', () => {
    const snapshot = handMadeSnapshot();
    const viaJson = JSON.parse(JSON.stringify(snapshot)) as MetricsSnapshot;
    expect(viaJson.policies[0]?.latency.buckets.at(-1)?.le).toBeNull();
    expect(renderPrometheus(viaJson)).toBe(renderPrometheus(snapshot));
    const withString = {
      ...snapshot,
      policies: snapshot.policies.map((p) => ({ ...p, latency: { ...p.latency, buckets: p.latency.buckets.map((b) => (b.le === Infinity ? { ...b, le: '+Inf' } : b)) } })),
    } as unknown as MetricsSnapshot;
    expect(renderPrometheus(withString)).toBe(renderPrometheus(snapshot));
  });

  it('writes the +Inf bucket from the count, even when a snapshot lists no infinite bucket', () => {
    const policy = policySnapshot('x', 'retry', { calls: 3 });
    const text = renderPrometheus({ timestamp: 0, policies: [{ ...policy, latency: { ...policy.latency, count: 3, sum: 30, buckets: [{ le: 10, count: 3 }] } }] });
    expect(text).toContain('bulwark_call_duration_seconds_bucket{policy="x",kind="retry",le="0.01"} 3\n');
    expect(text).toContain('bulwark_call_duration_seconds_bucket{policy="x",kind="retry",le="+Inf"} 3\n');
    parseExposition(text);
  });

  it('reads a registry, not only a snapshot, at every call', () => {
    let calls = 1;
    const source = { snapshot: (): MetricsSnapshot => ({ timestamp: 0, policies: [policySnapshot('a', 'timeout', { calls })] }) };
    expect(renderPrometheus(source)).toContain('bulwark_calls_total{policy="a",kind="timeout"} 1\n');
    calls = 2;
    expect(renderPrometheus(source)).toContain('bulwark_calls_total{policy="a",kind="timeout"} 2\n');
  });

  it('writes nothing for a registry that tracks nothing', () => {
    expect(renderPrometheus({ timestamp: 0, policies: [] })).toBe('');
    expect(renderPrometheus(new MetricsRegistry())).toBe('');
  });

  it('applies the prefix to every family, and an empty prefix is allowed', () => {
    const snapshot = handMadeSnapshot();
    for (const prefix of ['', 'app_', '_', 'svc:bulwark_', 'A9_']) {
      const parsed = expectMatchesSnapshot(renderPrometheus(snapshot, { prefix }), snapshot, prefix);
      for (const name of parsed.keys()) expect(name.startsWith(prefix)).toBe(true);
    }
    expect(renderPrometheus(snapshot, { prefix: '' })).toMatch(/^# HELP calls_total /);
  });

  it('adds constant labels to every series, histogram buckets included', () => {
    const snapshot = handMadeSnapshot();
    const constantLabels = { service: 'checkout', _env: 'prod' };
    const parsed = expectMatchesSnapshot(renderPrometheus(snapshot, { constantLabels }), snapshot, 'bulwark_', constantLabels);
    for (const family of parsed.values()) {
      for (const sample of family.samples) expect(sample.labels).toMatchObject(constantLabels);
    }
  });

  it('shows a breaker state this version does not know as current, beside the known ones at 0', () => {
    const policy = { ...policySnapshot('b', 'circuit-breaker'), state: 'draining' } as unknown as PolicyMetricsSnapshot;
    const states = parseExposition(renderPrometheus({ timestamp: 0, policies: [policy] })).get('bulwark_circuit_state');
    expect(states?.samples.map((s) => [s.labels.state, s.value])).toEqual([['closed', 0], ['open', 0], ['half-open', 0], ['isolated', 0], ['draining', 1]]);
  });

  it('writes non-finite gauge values the way Prometheus reads them', () => {
    const text = renderPrometheus({ timestamp: 0, policies: [policySnapshot('b', 'circuit-breaker', { failureRate: NaN, slowCallRate: Infinity }), policySnapshot('c', 'circuit-breaker', { failureRate: -Infinity })] });
    expect(text).toContain('bulwark_circuit_failure_ratio{policy="b",kind="circuit-breaker"} NaN\n');
    expect(text).toContain('bulwark_circuit_slow_call_ratio{policy="b",kind="circuit-breaker"} +Inf\n');
    expect(text).toContain('bulwark_circuit_failure_ratio{policy="c",kind="circuit-breaker"} -Inf\n');
    parseExposition(text);
  });

  it('writes the families a snapshot\'s own catalog describes: HELP escaped, one family for a field two kinds share, a state gauge\'s defaults', () => {
    const drops = { field: 'drops', event: 'drop', unit: '{drop}', description: 'Calls dropped: a \\ b\nsecond line' };
    const snapshot: MetricsSnapshot = {
      timestamp: 0,
      policies: [
        { ...policySnapshot('a', 'shedder'), drops: 2, mode: 'draining', active: 9 },
        { ...policySnapshot('b', 'limiter'), drops: 5 },
      ],
      kinds: {
        shedder: {
          refuses: false,
          counters: [drops],
          gauges: [
            { field: 'mode', prometheus: 'shedder_mode', otel: 'shedder.mode', description: 'The mode.', unit: '1', type: 'state' },
            { field: 'active', prometheus: 'shedder_active_calls', otel: 'shedder.active', description: 'Calls in it.', unit: '{call}', type: 'count' },
          ],
        },
        limiter: { refuses: false, counters: [drops], gauges: [] },
      },
    };
    const text = renderPrometheus(snapshot);
    const lines = text.split('\n');
    expect(lines.filter((line) => line.includes('drops_total'))).toEqual([
      '# HELP bulwark_drops_total Calls dropped: a \\\\ b\\nsecond line',
      '# TYPE bulwark_drops_total counter',
      'bulwark_drops_total{policy="a",kind="shedder"} 2',
      'bulwark_drops_total{policy="b",kind="limiter"} 5',
    ]);
    expect(lines.filter((line) => line.startsWith('bulwark_shedder_'))).toEqual(['bulwark_shedder_mode{policy="a",kind="shedder",state="draining"} 1', 'bulwark_shedder_active_calls{policy="a",kind="shedder"} 9']);
    // the shedder's `active` is its own gauge, not a bulkhead's
    expect(text).not.toContain('bulkhead_active_calls');
    expect(parseExposition(text).get('bulwark_drops_total')?.help).toBe('Calls dropped: a \\ b\nsecond line');
  });

  it('refuses two policies of one kind and name: their series would collide', () => {
    const twice = { timestamp: 0, policies: [policySnapshot('db', 'retry'), policySnapshot('db', 'retry')] };
    expect(() => renderPrometheus(twice)).toThrow(RangeError);
    expect(() => renderPrometheus(twice)).toThrow(/"db".*"retry"/);
    // One name across kinds is how a stack is named: fine.
    parseExposition(renderPrometheus({ timestamp: 0, policies: [policySnapshot('db', 'retry'), policySnapshot('db', 'timeout')] }));
  });

  it('says which number of the snapshot is not a number', () => {
    const broken = { ...policySnapshot('db', 'retry'), retries: '3' } as unknown as PolicyMetricsSnapshot;
    expect(() => renderPrometheus({ timestamp: 0, policies: [broken] })).toThrow(new TypeError('The snapshot\'s retries of policy 0 ("db") must be a number, got "3"'));
    const noName = { ...policySnapshot('db', 'retry'), name: 7 } as unknown as PolicyMetricsSnapshot;
    expect(() => renderPrometheus({ timestamp: 0, policies: [noName] })).toThrow(new TypeError("The snapshot's name of policy 0 must be a string, got 7"));
    const latency = (value: unknown): MetricsSnapshot => ({ timestamp: 0, policies: [policySnapshot('ok', 'retry'), { ...policySnapshot('db', 'retry'), latency: value } as unknown as PolicyMetricsSnapshot] });
    expect(() => renderPrometheus(latency(null))).toThrow(new TypeError('The snapshot\'s latency of policy 1 ("db") must be an object with a buckets array, got null'));
    expect(() => renderPrometheus(latency({ count: 1, sum: 1 }))).toThrow(new TypeError('The snapshot\'s latency of policy 1 ("db") must be an object with a buckets array, got an object'));
    const good = policySnapshot('db', 'retry', {}, [3]).latency;
    expect(() => renderPrometheus(latency({ ...good, count: '1' }))).toThrow(new TypeError('The snapshot\'s latency.count of policy 1 ("db") must be a number, got "1"'));
    expect(() => renderPrometheus(latency({ ...good, sum: undefined }))).toThrow(new TypeError('The snapshot\'s latency.sum of policy 1 ("db") must be a number, got undefined'));
    expect(() => renderPrometheus(latency({ ...good, buckets: [{ le: '5', count: 1 }] }))).toThrow(new TypeError('The snapshot\'s latency.buckets[].le of policy 1 ("db") must be a number, got "5"'));
    expect(() => renderPrometheus(latency({ ...good, buckets: [{ le: 5, count: null }] }))).toThrow(new TypeError('The snapshot\'s latency.buckets[].count of policy 1 ("db") must be a number, got null'));
  });

  it.each([
    [{ prefix: 42 }, TypeError, /^renderPrometheus\(\) prefix must be a string, got 42$/],
    [{ prefix: '1abc' }, RangeError, /prefix must match .* got "1abc"/],
    [{ prefix: 'a-b_' }, RangeError, /prefix must match/],
    [{ prefix: 'bulwark ' }, RangeError, /prefix must match/],
    [{ constantLabels: 'service=x' }, TypeError, /constantLabels must be an object/],
    [{ constantLabels: ['x'] }, TypeError, /constantLabels must be an object/],
    [{ constantLabels: { '1a': 'x' } }, RangeError, /label name must match .* got "1a"/],
    [{ constantLabels: { 'a-b': 'x' } }, RangeError, /label name must match/],
    [{ constantLabels: { a: 'x', __meta: 'x' } }, RangeError, /not start with "__", got "__meta"/],
    [{ constantLabels: { policy: 'x' } }, RangeError, /^renderPrometheus\(\) constantLabels: "policy" is a label bulwark sets itself \(policy, kind, state, le\)$/],
    [{ constantLabels: { le: 'x' } }, RangeError, /"le" is a label bulwark sets itself/],
    [{ constantLabels: { state: 'x' } }, RangeError, /"state" is a label bulwark sets itself/],
    [{ constantLabels: { kind: 'x' } }, RangeError, /"kind" is a label bulwark sets itself/],
    [{ constantLabels: { region: 1 } }, TypeError, /constantLabels.region must be a string, got 1/],
    [{ constLabels: { a: 'b' } }, TypeError, /has no option "constLabels" \(did you mean "constantLabels"\?\); known options: "prefix", "constantLabels"/],
    ['bulwark_', TypeError, /options must be an object, got "bulwark_"/],
  ])('refuses bad options: %j', (options, type, message) => {
    const call = (): string => renderPrometheus(handMadeSnapshot(), options as PrometheusOptions);
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });

  it.each([[null], [undefined], [42], [{}], [{ policies: 'none' }], [{ snapshot: 'not a function' }]])('refuses a source that is neither a registry nor a snapshot: %j', (source) => {
    expect(() => renderPrometheus(source as unknown as MetricsSnapshot)).toThrow(TypeError);
    expect(() => renderPrometheus(source as unknown as MetricsSnapshot)).toThrow(/^renderPrometheus\(\): expected a MetricsRegistry \(an object with snapshot\(\)\) or a snapshot \(an object with policies\), got /);
  });
});

describe('renderPrometheus with a real registry', () => {
  /**
   * A full stack tracked by a registry whose time is the test's: every latency is known. The
   * retry waits no time between attempts; the timeout runs on a clock moved by hand.
   */
  function trackedStack() {
    const clock = new CountingClock();
    let extra = 0; // ms a call "takes" inside fn, added to the clock's time
    const registry = new MetricsRegistry({ now: () => clock.now() + extra });
    const breaker = new CircuitBreaker({ name: 'payments', failureThreshold: 2, recoveryTimeout: 60_000, clock });
    const bulkhead = new Bulkhead({ name: 'payments', maxConcurrent: 1, maxQueue: 1, clock });
    const stack = compose(
      withFallback('queued' as const, { name: 'payments' }),
      breaker,
      retryWithBackoff({ name: 'payments', maxRetries: 1, baseDelay: 0, jitter: 'none', clock }),
      withTimeout(1_000, { name: 'payments', clock }),
      bulkhead,
    );
    registry.track(stack);
    const samples: { policy: string; kind: string; durationMs: number }[] = [];
    registry.onCall((sample) => samples.push(sample));
    const takes = (ms: number) => {
      extra += ms;
    };
    return { clock, registry, breaker, bulkhead, stack, samples, takes };
  }

  it('renders what the policies counted, and matches prom-client fed with the same calls', async () => {
    const { clock, registry, breaker, stack, samples, takes } = trackedStack();
    // 1: answered at once, in 3 ms
    await expect(stack.execute(() => (takes(3), 'ok'))).resolves.toBe('ok');
    // 2: fails in 2 ms, answered by the retry in 4 ms
    let attempt = 0;
    await expect(stack.execute(() => (++attempt === 1 ? (takes(2), Promise.reject(new Error('blip'))) : (takes(4), 'ok')))).resolves.toBe('ok');
    // 3: hangs twice (until the timeout aborts it): two timeouts at exactly 1 000 ms, the breaker
    // counts one failure, the fallback answers
    const hanging = stack.execute(({ signal }) => new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))));
    await clock.advance(1_000);
    await clock.advance(1_000);
    await expect(hanging).resolves.toBe('queued');
    // 4: fails twice: the breaker opens
    await expect(stack.execute(() => Promise.reject(new Error('down')))).resolves.toBe('queued');
    expect(breaker.state).toBe('open');
    // 5: refused by the open breaker
    await expect(stack.execute(() => 'never runs')).resolves.toBe('queued');

    const snapshot = registry.snapshot();
    const text = renderPrometheus(registry);
    const parsed = expectMatchesSnapshot(text, snapshot);
    const value = (family: string, kind: PolicyKind): number | undefined =>
      parsed.get(`bulwark_${family}`)?.samples.find((s) => s.labels.kind === kind && s.name === `bulwark_${family}`)?.value;
    expect(value('calls_total', 'fallback')).toBe(5);
    expect(value('fallbacks_total', 'fallback')).toBe(3);
    expect(value('rejections_total', 'circuit-breaker')).toBe(1);
    expect(value('failures_total', 'circuit-breaker')).toBe(2); // a rejection is not a failure (cockatiel #115)
    expect(value('retries_total', 'retry')).toBe(3);
    expect(value('timeouts_total', 'timeout')).toBe(2);
    expect(parsed.get('bulwark_circuit_state')?.samples.filter((s) => s.value === 1).map((s) => s.labels.state)).toEqual(['open']);
    // Two timeouts at exactly 1 s sit in the le="1" bucket, not above it.
    const timeoutBuckets = parsed.get('bulwark_call_duration_seconds')?.samples.filter((s) => s.labels.kind === 'timeout' && s.name.endsWith('_bucket'));
    expect(timeoutBuckets?.find((s) => s.labels.le === '0.5')?.value).toBe(5);
    expect(timeoutBuckets?.find((s) => s.labels.le === '1')?.value).toBe(7);

    const durations = (policy: PolicyMetricsSnapshot): number[] =>
      samples.filter((s) => s.policy === policy.name && s.kind === policy.kind).map((s) => s.durationMs);
    expectSameAsPromClient(text, await renderWithPromClient(snapshot, durations));
  });

  it('shows bulkhead occupancy live: what runs and what waits at the moment of the scrape', async () => {
    const { registry, bulkhead, stack } = trackedStack();
    const first = deferred<string>();
    const second = deferred<string>();
    const running = stack.execute(() => first.promise);
    const waiting = stack.execute(() => second.promise);
    await flush();
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 1]);
    const gauges = (): number[] => {
      const parsed = expectMatchesSnapshot(renderPrometheus(registry), registry.snapshot());
      return ['bulwark_bulkhead_active_calls', 'bulwark_bulkhead_queued_calls'].map((name) => parsed.get(name)?.samples[0]?.value ?? NaN);
    };
    expect(gauges()).toEqual([1, 1]);
    first.resolve('a');
    await expect(running).resolves.toBe('a');
    expect(gauges()).toEqual([1, 0]);
    second.resolve('b');
    await expect(waiting).resolves.toBe('b');
    expect(gauges()).toEqual([0, 0]);
  });
});

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/** A registry with a breaker and a bulkhead that have seen a few calls. */
async function busyRegistry(): Promise<MetricsRegistry> {
  const registry = new MetricsRegistry();
  const breaker = new CircuitBreaker({ name: 'inventory "eu"', failureThreshold: 1 });
  registry.track(compose(breaker, new Bulkhead({ name: 'inventory "eu"', maxConcurrent: 4 })));
  await breaker.execute(() => 'ok');
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
  await breaker.execute(() => 'refused').catch(() => undefined);
  return registry;
}

describe('prometheusHandler (node:http, Express, Connect)', () => {
  it('answers GET /metrics with the exposition of the registry at that moment', async () => {
    const registry = await busyRegistry();
    const url = await serve(prometheusHandler(registry));
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = await response.text();
    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(body)));
    expectMatchesSnapshot(body, registry.snapshot());
    expect(body).toContain('bulwark_rejections_total{policy="inventory \\"eu\\"",kind="circuit-breaker"} 1\n');
    // a query string does not change the path
    expect((await fetch(`${url}/metrics?debug=1`)).status).toBe(200);
  });

  it('answers HEAD with the headers of a GET and no body', async () => {
    const registry = await busyRegistry();
    const url = await serve(prometheusHandler(registry));
    const get = await fetch(`${url}/metrics`);
    const length = Buffer.byteLength(await get.text());
    const head = await fetch(`${url}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(head.headers.get('content-length')).toBe(String(length));
    expect(await head.text()).toBe('');
  });

  it('answers 405 with Allow to another method on its path, 404 to another path', async () => {
    const url = await serve(prometheusHandler(await busyRegistry()));
    const post = await fetch(`${url}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.text()).toBe('Method Not Allowed\n');
    expect(post.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const other = await fetch(`${url}/metrics/extra`);
    expect(other.status).toBe(404);
    expect(await other.text()).toBe('Not Found\n');
    expect(other.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    // Every answer, not only the metrics: a cache must neither keep one nor serve it for another Accept.
    for (const answer of [post, other, await fetch(`${url}/metrics`)]) {
      expect([answer.headers.get('cache-control'), answer.headers.get('vary')]).toEqual(['no-store', 'Accept']);
    }
    expect((await fetch(`${url}/`)).status).toBe(404);
  });

  it('answers on the path it is given, with the prefix and labels it is given', async () => {
    const registry = await busyRegistry();
    const url = await serve(prometheusHandler(registry, { path: '/internal/metrics', prefix: 'app_', constantLabels: { service: 'shop' } }));
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
    const body = await (await fetch(`${url}/internal/metrics`)).text();
    expectMatchesSnapshot(body, registry.snapshot(), 'app_', { service: 'shop' });
  });

  it('as Express middleware: serves its path and passes every other request on', async () => {
    const registry = await busyRegistry();
    const app = express();
    app.use(prometheusHandler(registry));
    app.get('/health', (_request, response) => {
      response.send('fine');
    });
    const url = await serve(app);
    expectMatchesSnapshot(await (await fetch(`${url}/metrics`)).text(), registry.snapshot());
    expect(await (await fetch(`${url}/health`)).text()).toBe('fine');
    expect((await fetch(`${url}/nothing`)).status).toBe(404);
  });

  it('mounted under a path by Express (which strips it from req.url), still answers', async () => {
    const registry = await busyRegistry();
    const app = express();
    app.use('/metrics', prometheusHandler(registry));
    const url = await serve(app);
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expectMatchesSnapshot(await response.text(), registry.snapshot());
  });

  it('hands a rendering error to next(error) in Express', async () => {
    const failing = { snapshot: (): MetricsSnapshot => { throw new Error('snapshot broke'); } };
    const app = express();
    app.use(prometheusHandler(failing));
    app.use((error: Error, _request: express.Request, response: express.Response, _next: express.NextFunction) => {
      response.status(503).send(`handled: ${error.message}`);
    });
    const url = await serve(app);
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(503);
    expect(await response.text()).toBe('handled: snapshot broke');
  });

  it('answers 500 and reports the error when there is no next', async () => {
    const report = vi.spyOn(console, 'error').mockImplementation(() => {});
    const error = new Error('snapshot broke');
    const url = await serve(prometheusHandler({ snapshot: () => { throw error; } }));
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(500);
    expect(await response.text()).toBe('Internal Server Error\n');
    expect([response.headers.get('cache-control'), response.headers.get('vary')]).toEqual(['no-store', 'Accept']);
    expect(report).toHaveBeenCalledWith(expect.stringContaining('Prometheus'), error);
  });

  it('works on a response object without Express (setHeader, statusCode, end)', () => {
    const headers: Record<string, string> = {};
    const response = { statusCode: 0, body: undefined as string | undefined, setHeader: (name: string, value: string) => void (headers[name] = value), end: (body?: string) => void (response.body = body) };
    prometheusHandler({ snapshot: handMadeSnapshot })({ method: 'GET', url: '/metrics' }, response);
    expect(response.statusCode).toBe(200);
    expect(headers['content-type']).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(response.body).toBe(renderPrometheus(handMadeSnapshot()));
    response.body = 'untouched';
    prometheusHandler({ snapshot: handMadeSnapshot })({ method: 'HEAD', url: '/metrics' }, response);
    expect(response.body).toBeUndefined();
    expect(headers['content-length']).toBe(String(Buffer.byteLength(renderPrometheus(handMadeSnapshot()))));
  });

  it('reads the path of an absolute-form target (a proxy request) and of a missing url', () => {
    const handler = prometheusHandler({ snapshot: handMadeSnapshot });
    const answer = (request: { method?: string; url?: string }): number => {
      const response = { statusCode: 0, setHeader: () => undefined, end: () => undefined };
      handler(request, response);
      return response.statusCode;
    };
    expect(answer({ method: 'GET', url: 'http://10.0.0.7:9464/metrics?x=1' })).toBe(200);
    expect(answer({ method: 'GET', url: '/metrics#top' })).toBe(200);
    expect(answer({ url: '/metrics' })).toBe(200);
    expect(answer({ method: 'GET' })).toBe(404);
    expect(answer({ method: 'DELETE', url: '/metrics' })).toBe(405);
    // without a url, the request is for "/"
    const root = prometheusHandler({ snapshot: handMadeSnapshot }, { path: '/' });
    const response = { statusCode: 0, setHeader: () => undefined, end: () => undefined };
    root({ method: 'GET' }, response);
    expect(response.statusCode).toBe(200);
  });

  it('checks its options when it is made, not at the first scrape', () => {
    const registry = new MetricsRegistry();
    expect(() => prometheusHandler(registry, { path: 'metrics' })).toThrow(/path must be a path that starts with "\/"/);
    expect(() => prometheusHandler(registry, { path: '/metrics?x' })).toThrow(RangeError);
    expect(() => prometheusHandler(registry, { path: 7 as unknown as string })).toThrow(new TypeError('prometheusHandler() path must be a string, got 7'));
    expect(() => prometheusHandler(registry, { prefix: '9' })).toThrow(/prometheusHandler\(\) prefix must match/);
    expect(() => prometheusHandler(registry, { route: '/m' } as never)).toThrow(/has no option "route"/);
    expect(() => prometheusHandler(handMadeSnapshot() as never)).toThrow(/expected a MetricsRegistry \(an object with snapshot\(\)\), got an object/);
    expect(() => prometheusHandler(undefined as never)).toThrow(new TypeError('prometheusHandler(): expected a MetricsRegistry (an object with snapshot()), got undefined'));
    expect(() => prometheusHandler(Object.assign(() => undefined, { snapshot: handMadeSnapshot }) as never)).toThrow(new TypeError('prometheusHandler(): expected a MetricsRegistry (an object with snapshot()), got a function'));
  });
});

describe('prometheusFetchHandler (fetch-style servers)', () => {
  it('answers GET on its path with the exposition, and nothing for another path', async () => {
    const registry = await busyRegistry();
    const handler = prometheusFetchHandler(registry);
    const response = handler(new Request('http://localhost/metrics?x=1'));
    expect(response?.status).toBe(200);
    expect(response?.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    const body = (await response?.text()) ?? '';
    expect(response?.headers.get('content-length')).toBe(String(new TextEncoder().encode(body).byteLength));
    expectMatchesSnapshot(body, registry.snapshot());
    expect(handler(new Request('http://localhost/other'))).toBeUndefined();
    expect(handler(new Request('http://localhost/metrics/'))).toBeUndefined();
  });

  it('answers HEAD with the headers and no body, and 405 to other methods', async () => {
    const handler = prometheusFetchHandler({ snapshot: handMadeSnapshot });
    const head = handler(new Request('http://localhost/metrics', { method: 'HEAD' }));
    expect(head?.status).toBe(200);
    expect(head?.body).toBeNull();
    expect(head?.headers.get('content-length')).toBe(String(new TextEncoder().encode(renderPrometheus(handMadeSnapshot())).byteLength));
    const post = handler(new Request('http://localhost/metrics', { method: 'POST', body: 'x' }));
    expect(post?.status).toBe(405);
    expect(post?.headers.get('allow')).toBe('GET, HEAD');
    expect(await post?.text()).toBe('Method Not Allowed\n');
  });

  it('chains with ?? in front of an application, with its own path and labels', async () => {
    const registry = await busyRegistry();
    const metrics = prometheusFetchHandler(registry, { path: '/_metrics', constantLabels: { pod: 'a-1' } });
    const app = (request: Request): Response => metrics(request) ?? new Response('app', { status: 200 });
    expect(await app(new Request('http://localhost/metrics')).text()).toBe('app');
    expectMatchesSnapshot(await app(new Request('http://localhost/_metrics')).text(), registry.snapshot(), 'bulwark_', { pod: 'a-1' });
  });

  it('throws a rendering error to the server, which answers it', () => {
    const error = new Error('snapshot broke');
    const handler = prometheusFetchHandler({ snapshot: () => { throw error; } });
    expect(() => handler(new Request('http://localhost/metrics'))).toThrow(error);
    expect(handler(new Request('http://localhost/elsewhere'))).toBeUndefined(); // another path never reads the registry
  });

  it('checks its options when it is made', () => {
    expect(() => prometheusFetchHandler(new MetricsRegistry(), { path: '' })).toThrow(/prometheusFetchHandler\(\) path must be a path that starts with "\/"/);
    expect(() => prometheusFetchHandler(new MetricsRegistry(), { constantLabels: { __name__: 'x' } })).toThrow(RangeError);
    expect(() => prometheusFetchHandler(null as never)).toThrow(/got null/);
  });
});
