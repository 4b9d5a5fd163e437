import type { LatencySnapshot, MetricsSnapshot, PolicyMetricsSnapshot } from '../metrics/index.js';
import { CORE_COUNTERS, catalogOf, snakeCase, type KindMetrics } from '../shared/metric-catalog.js';
import { options as checkOptions, show } from './options.js';

/**
 * The `Content-Type` of the text exposition format that {@link renderPrometheus} writes.
 *
 * @example
 * ```ts
 * reply.type(PROMETHEUS_CONTENT_TYPE).send(renderPrometheus(registry));
 * ```
 */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Where metrics come from: a `MetricsRegistry`, or anything else with a `snapshot()` method
 * that returns the same shape.
 *
 * @example
 * ```ts
 * // two registries behind one endpoint (their policies must differ in name or kind)
 * const both: MetricsSource = { snapshot: () => ({ timestamp: Date.now(), policies: [...a.snapshot().policies, ...b.snapshot().policies] }) };
 * ```
 */
export interface MetricsSource {
  /** The metrics now, read on each render. */
  snapshot(): MetricsSnapshot;
}

/** Options of {@link renderPrometheus} and the handlers. */
export interface PrometheusOptions {
  /**
   * Put before every metric name; it must match `[a-zA-Z_:][a-zA-Z0-9_:]*` (or be empty).
   * Prometheus keeps colons for recording rules, so an exporter should not use them.
   * @default 'bulwark_'
   */
  prefix?: string | undefined;
  /**
   * Labels added to every series, such as `{ service: 'checkout' }`. Names must match
   * `[a-zA-Z_][a-zA-Z0-9_]*`, must not start with `__` (reserved by Prometheus) and must not be
   * one bulwark uses (`policy`, `kind`, `state`, `le`); values are strings.
   * @default {}
   */
  constantLabels?: Readonly<Record<string, string>> | undefined;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const OWN_LABELS: readonly string[] = ['policy', 'kind', 'state', 'le'];
const OPTION_KEYS: readonly (keyof PrometheusOptions)[] = ['prefix', 'constantLabels'];

/** Options checked once, with the constant labels already written out. */
interface Settings {
  readonly prefix: string;
  /** `,name="value"` for each constant label, ready to append. */
  readonly constantLabels: string;
}

/** `\` and line feed escaped, as the format asks of HELP text. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `\`, `"` and line feed escaped, as the format asks of label values. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value as Prometheus reads it: Go float syntax, with `+Inf`, `-Inf` and `NaN`. */
function formatNumber(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  if (Number.isNaN(value)) return 'NaN';
  return String(value);
}

export function checkSettings(name: string, given: PrometheusOptions | undefined): Settings {
  const opts = checkOptions(name, given, OPTION_KEYS);
  const prefix = opts.prefix ?? 'bulwark_';
  if (typeof prefix !== 'string') throw new TypeError(`${name} prefix must be a string, got ${show(prefix)}`);
  if (prefix !== '' && !METRIC_NAME.test(prefix)) {
    throw new RangeError(`${name} prefix must match [a-zA-Z_:][a-zA-Z0-9_:]* or be empty, got ${show(prefix)}`);
  }
  const labels = opts.constantLabels ?? {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new TypeError(`${name} constantLabels must be an object of label names to string values, got ${show(labels)}`);
  }
  let constantLabels = '';
  for (const [label, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(label) || label.startsWith('__')) {
      throw new RangeError(`${name} constantLabels: a label name must match [a-zA-Z_][a-zA-Z0-9_]* and not start with "__", got ${show(label)}`);
    }
    if (OWN_LABELS.includes(label)) {
      throw new RangeError(`${name} constantLabels: ${show(label)} is a label bulwark sets itself (${OWN_LABELS.join(', ')})`);
    }
    if (typeof value !== 'string') {
      throw new TypeError(`${name} constantLabels.${label} must be a string, got ${show(value)}`);
    }
    constantLabels += `,${label}="${escapeLabelValue(value)}"`;
  }
  return { prefix, constantLabels };
}

export function takeSnapshot(name: string, source: MetricsSource | MetricsSnapshot): MetricsSnapshot {
  if (typeof source === 'object' && source !== null) {
    if (typeof (source as Partial<MetricsSource>).snapshot === 'function') return (source as MetricsSource).snapshot();
    if (Array.isArray((source as Partial<MetricsSnapshot>).policies)) return source as MetricsSnapshot;
  }
  throw new TypeError(`${name}: expected a MetricsRegistry (an object with snapshot()) or a snapshot (an object with policies), got ${show(source)}`);
}

/** Reads a number of the snapshot, or says which one is not a number. */
function numberAt(policy: PolicyMetricsSnapshot, index: number, field: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`The snapshot's ${field} of policy ${index} (${show(policy.name)}) must be a number, got ${show(value)}`);
  }
  return value;
}

/** A bucket's upper bound: `Infinity` in memory, `null` after `JSON.stringify`, or the string `"+Inf"`. */
function isInfiniteBound(le: unknown): boolean {
  return le === Infinity || le === null || le === '+Inf';
}

/** The first of each key, in order. */
function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function render(settings: Settings, snapshot: MetricsSnapshot): string {
  const { prefix, constantLabels } = settings;
  const policies = snapshot.policies;
  // A policy's series are told apart by name and kind; two alike would write two series with
  // the same labels, and Prometheus rejects a scrape that has one.
  const labelsOf: string[] = [];
  const seen = new Set<string>();
  policies.forEach((policy, index) => {
    if (typeof policy.name !== 'string') {
      throw new TypeError(`The snapshot's name of policy ${index} must be a string, got ${show(policy.name)}`);
    }
    const key = `${policy.kind}\u0000${policy.name}`;
    if (seen.has(key)) {
      throw new RangeError(`Two policies in the snapshot have the same name and kind (${show(policy.name)}, ${show(policy.kind)}); give each a name of its own`);
    }
    seen.add(key);
    labelsOf.push(`policy="${escapeLabelValue(policy.name)}",kind="${escapeLabelValue(String(policy.kind))}"${constantLabels}`);
  });

  let text = '';
  const family = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: string): void => {
    // A family with no series is left out rather than written as metadata alone.
    if (samples === '') return;
    text += `# HELP ${prefix}${name} ${escapeHelp(help)}\n# TYPE ${prefix}${name} ${type}\n${samples}`;
  };

  const catalog = catalogOf(snapshot.kinds);
  const kindOf = (policy: PolicyMetricsSnapshot): KindMetrics | undefined => catalog[String(policy.kind)];
  const counter = (field: string, help: string, exports: (policy: PolicyMetricsSnapshot) => boolean): void => {
    let samples = '';
    policies.forEach((policy, index) => {
      if (!exports(policy)) return;
      samples += `${prefix}${snakeCase(field)}_total{${labelsOf[index]}} ${formatNumber(numberAt(policy, index, field, policy[field]))}\n`;
    });
    family(`${snakeCase(field)}_total`, 'counter', help, samples);
  };
  // Every policy's calls, successes and failures; rejections of the kinds that refuse; then
  // each kind's own counters, for that kind only, so a series exists from the first scrape.
  for (const core of CORE_COUNTERS) counter(core.field, core.description, (policy) => core.field !== 'rejections' || kindOf(policy)?.refuses === true);
  for (const { field, description } of uniqueBy(Object.values(catalog).flatMap((kind) => kind.counters), (spec) => spec.field)) {
    // Policies of one kind may describe different counters (a retry with a budget has one more):
    // a policy without this one has no series of it.
    counter(field, description, (policy) => policy[field] !== undefined && kindOf(policy)?.counters.some((spec) => spec.field === field) === true);
  }

  let histogram = '';
  policies.forEach((policy, index) => {
    const latency = policy.latency as Partial<LatencySnapshot> | undefined;
    if (typeof latency !== 'object' || latency === null || !Array.isArray(latency.buckets)) {
      throw new TypeError(`The snapshot's latency of policy ${index} (${show(policy.name)}) must be an object with a buckets array, got ${show(latency)}`);
    }
    const labels = labelsOf[index];
    const count = numberAt(policy, index, 'latency.count', latency.count);
    const sum = numberAt(policy, index, 'latency.sum', latency.sum);
    for (const bucket of latency.buckets) {
      // The +Inf bucket is written from the count below: the format requires them to be equal.
      if (isInfiniteBound(bucket.le)) continue;
      const le = numberAt(policy, index, 'latency.buckets[].le', bucket.le);
      const bucketCount = numberAt(policy, index, 'latency.buckets[].count', bucket.count);
      histogram += `${prefix}call_duration_seconds_bucket{${labels},le="${formatNumber(le / 1000)}"} ${formatNumber(bucketCount)}\n`;
    }
    histogram +=
      `${prefix}call_duration_seconds_bucket{${labels},le="+Inf"} ${formatNumber(count)}\n` +
      `${prefix}call_duration_seconds_sum{${labels}} ${formatNumber(sum / 1000)}\n` +
      `${prefix}call_duration_seconds_count{${labels}} ${formatNumber(count)}\n`;
  });
  family('call_duration_seconds', 'histogram', 'How long calls took in the policy, in seconds, from entering it to its outcome.', histogram);

  for (const gauge of uniqueBy(Object.values(catalog).flatMap((kind) => kind.gauges), (spec) => spec.prometheus)) {
    let samples = '';
    policies.forEach((policy, index) => {
      const value = policy[gauge.field];
      if (value === undefined || kindOf(policy)?.gauges.some((spec) => spec.prometheus === gauge.prometheus) !== true) return;
      const labels = labelsOf[index];
      if (gauge.type !== 'state') {
        samples += `${prefix}${gauge.prometheus}{${labels}} ${formatNumber(numberAt(policy, index, gauge.field, value))}\n`;
        return;
      }
      const states = gauge.states ?? [];
      const label = gauge.stateLabel?.prometheus ?? 'state';
      for (const state of states) samples += `${prefix}${gauge.prometheus}{${labels},${label}="${escapeLabelValue(state)}"} ${state === value ? 1 : 0}\n`;
      // A state this version does not know still shows as current, rather than no state at all.
      if (!states.includes(String(value))) samples += `${prefix}${gauge.prometheus}{${labels},${label}="${escapeLabelValue(String(value))}"} 1\n`;
    });
    family(gauge.prometheus, 'gauge', gauge.description, samples);
  }
  return text;
}

/**
 * Writes the metrics of a registry (or of one snapshot) in Prometheus's text exposition
 * format 0.0.4: `# HELP` and `# TYPE` lines, counters ending in `_total`, gauges, and the
 * call latency as a histogram in seconds (`_bucket` with cumulative counts up to
 * `le="+Inf"`, `_sum`, `_count`). Every series has the labels `policy` (the policy's name)
 * and `kind`. Serve it with {@link PROMETHEUS_CONTENT_TYPE}, or use
 * {@link prometheusHandler} / {@link prometheusFetchHandler}.
 *
 * Throws a `TypeError` or `RangeError` for bad options, and a `RangeError` when two tracked
 * policies share a name and a kind (their series could not be told apart).
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from 'bulwark';
 * import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from 'bulwark/prometheus';
 *
 * const registry = new MetricsRegistry();
 * registry.track(paymentsStack);
 * fastify.get('/metrics', (_request, reply) =>
 *   reply.type(PROMETHEUS_CONTENT_TYPE).send(renderPrometheus(registry, { constantLabels: { service: 'checkout' } })));
 * ```
 */
export function renderPrometheus(source: MetricsSource | MetricsSnapshot, options?: PrometheusOptions): string {
  const settings = checkSettings('renderPrometheus()', options);
  return render(settings, takeSnapshot('renderPrometheus()', source));
}
