/**
 * Turns what the run measured into text: the full-screen frame, the plain periodic lines (no
 * terminal, `--plain`, `NO_COLOR`) and the closing summary. Pure functions of a {@link View};
 * the numbers in it come from the metrics registry's snapshots and the upstream's counters.
 */
import type { CircuitState, LatencySnapshot } from 'bulwark';
import type { Counts } from './readings.js';
import { describePhase, phaseAt, phases, type Phase } from './scenario.js';
import { fit, padEnd, padStart, visibleWidth, type Palette } from './terminal.js';
import type { UpstreamCounters } from './upstream.js';

/** One dependency as the dashboard shows it. */
export interface DependencyView {
  readonly name: string;
  /** The breaker's state now (the registry's gauge). */
  readonly state: CircuitState | undefined;
  /** Per second over the last window. */
  readonly recent: Counts;
  /** Whole-call latency percentiles over the last window, in ms (undefined: no call finished). */
  readonly recentP50: number | undefined;
  readonly recentP99: number | undefined;
  /** Since the start. */
  readonly totals: Counts;
  /** Whole-call latency since the start, with the registry's own percentile estimates. */
  readonly latency: LatencySnapshot | undefined;
  /** Calls that entered the stack and have not finished yet (registry: calls − finished). */
  readonly inFlight: number;
  /** The bulkhead's gauges and limits; none for a stack without a bulkhead. */
  readonly bulkhead: { readonly active: number; readonly queued: number; readonly maxConcurrent: number; readonly maxQueue: number } | undefined;
  /** The rate limiter's gauges and settings, and the vendor's limit it keeps under; none for a stack without one. */
  readonly limiter?: LimiterView | undefined;
  /** The hedging's settings; none for a stack without hedging. */
  readonly hedge?: { readonly delay: number } | undefined;
  readonly upstream: Readonly<UpstreamCounters>;
  /** How long the upstream takes to answer, by its own clock, since the start (its histogram). */
  readonly upstreamLatency: LatencySnapshot | undefined;
  /** The upstream's own p99 over the last window, in ms (undefined: no answer planned). */
  readonly recentUpstreamP99: number | undefined;
  /** The breaker's state per tick so far: the most telling state it was in during the tick. */
  readonly timeline: readonly CircuitState[];
  /** The states the breaker went through since the previous plain line, first the one it was in. */
  readonly path: readonly CircuitState[];
  /** How many times the breaker opened (its `stateChange` events). */
  readonly opened: number;
}

/** A rate limiter as the dashboard shows it. */
export interface LimiterView {
  /** Permits a burst of calls could take now (the registry's `permits` gauge). */
  readonly permits: number;
  /** Calls waiting for a permit now (its `queued` gauge). */
  readonly queued: number;
  readonly rate: number;
  readonly interval: number;
  readonly burst: number | undefined;
  readonly maxWait: number;
  /** The limit the upstream itself enforces, if it has one. */
  readonly vendor: { readonly rate: number; readonly interval: number } | undefined;
}

/** Everything one frame, line or summary shows. */
export interface View {
  readonly elapsedMs: number;
  readonly durationMs: number;
  /** How often the dashboard samples; one timeline cell per tick. */
  readonly tickMs: number;
  /** The window of `recent` rates and percentiles, in ms. */
  readonly windowMs: number;
  /** Where the upstream listens (`127.0.0.1 :<port> …`, a port per dependency). */
  readonly upstreamAt: string;
  readonly phase: Phase;
  /** `running` while calls arrive; `draining` once they stop and the last ones finish. */
  readonly stage: 'running' | 'draining' | 'finished' | 'interrupted';
  readonly dependencies: readonly DependencyView[];
}

// ── small formats ────────────────────────────────────────────────────────────────────────
const integer = (value: number): string => Math.round(value).toLocaleString('en-US');

/** A rate: one decimal under 10 per second, whole numbers above. */
const perSecond = (value: number): string => (value >= 9.95 ? integer(value) : value.toFixed(1));

/** A latency in ms or s; `—` when there is none. */
function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms >= 1_000) return `${(ms / 1_000).toFixed(ms >= 10_000 ? 0 : 1)} s`;
  return `${ms >= 10 ? Math.round(ms) : ms.toFixed(1)} ms`;
}

const seconds = (ms: number): string => `${(ms / 1_000).toFixed(1)} s`;

/** The "rejected" the dashboard shows: calls refused by the breaker, the bulkhead or the rate limiter. */
const rejections = (counts: Counts): number => counts.breakerRejections + counts.bulkheadRejections + counts.limiterRejections;

/** A limit per second ("18/s"), or per its interval. */
const perInterval = (rate: number, interval: number): string => (interval === 1_000 ? `${rate}/s` : `${rate} per ${duration(interval)}`);

/** A rate limiter's settings in a few words ("18/s + 2, waits ≤ 250 ms"). */
const limitText = (limiter: LimiterView): string =>
  `${perInterval(limiter.rate, limiter.interval)}${limiter.burst === undefined ? '' : ` + ${limiter.burst}`}, waits ≤ ${duration(limiter.maxWait)}`;

/** The limit the vendor enforces ("20/s"); `—` when it has none. */
const vendorText = (limiter: LimiterView): string => (limiter.vendor === undefined ? '—' : perInterval(limiter.vendor.rate, limiter.vendor.interval));

/** A count or rate, coloured when it is not zero, dimmed when it is. */
function tinted(text: string, value: number, colour: (text: string) => string, p: Palette): string {
  return value === 0 || text === '0.0' ? p.dim(text) : colour(text);
}

const STATE_CELL: Record<CircuitState, string> = { closed: '▁', 'half-open': '▄', open: '█', isolated: '█' };

function stateColour(state: CircuitState | undefined, p: Palette): (text: string) => string {
  switch (state) {
    case 'closed':
      return p.green;
    case 'half-open':
      return p.yellow;
    case 'open':
      return (text) => p.bold(p.red(text));
    case 'isolated':
      return p.magenta;
    case undefined:
      return p.dim;
  }
}

/** The state in words, coloured; `OPEN` in capitals, so it stands out without colour too. */
function badge(state: CircuitState | undefined, p: Palette): string {
  return stateColour(state, p)(state === 'open' ? 'OPEN' : (state ?? 'untracked'));
}

// ── tables ───────────────────────────────────────────────────────────────────────────────
interface Column<Row> {
  readonly header: string;
  /** Columns next to each other with the same group share a heading above theirs. */
  readonly group?: string;
  readonly width: number;
  readonly align: 'left' | 'right';
  readonly cell: (row: Row) => string;
}

/**
 * A table that fits `width`: columns two spaces apart, or one when that keeps more of them;
 * columns are kept left to right while they fit, so a narrow terminal loses the least
 * important ones whole instead of wrapping every line.
 */
function table<Row>(columns: readonly Column<Row>[], rows: readonly Row[], width: number, p: Palette): string[] {
  // A column is as wide as its widest cell, so a long run's big counts never push the others out of line.
  const sized = columns.map((column) => {
    const cells = rows.map((row) => column.cell(row));
    return { ...column, cells, width: Math.max(column.width, visibleWidth(column.header), ...cells.map(visibleWidth)) };
  });
  const fitting = (gap: number): typeof sized => {
    const kept: typeof sized = [];
    let used = 0;
    for (const column of sized) {
      const needed = column.width + (kept.length === 0 ? 0 : gap);
      if (kept.length > 0 && used + needed > width) break;
      kept.push(column);
      used += needed;
    }
    return kept;
  };
  const wide = fitting(2);
  const narrow = fitting(1);
  const [kept, gap] = narrow.length > wide.length ? [narrow, 1] : [wide, 2];
  const line = (cell: (column: (typeof kept)[number]) => string): string =>
    kept
      .map((column) => (column.align === 'right' ? padStart(cell(column), column.width) : padEnd(cell(column), column.width)))
      .join(' '.repeat(gap))
      .trimEnd();
  const lines = [p.dim(line((column) => column.header)), ...rows.map((_, index) => line((column) => column.cells[index] ?? ''))];
  if (kept.some((column) => column.group !== undefined)) lines.unshift(p.dim(groupHeadings(kept, gap)));
  return lines;
}

/** `── per second ──` over the columns of each group, blank over the others. */
function groupHeadings(columns: readonly Pick<Column<never>, 'group' | 'width'>[], gap: number): string {
  let heading = '';
  let index = 0;
  while (index < columns.length) {
    const group = columns[index]?.group;
    let span = columns[index]?.width ?? 0;
    let next = index + 1;
    while (group !== undefined && next < columns.length && columns[next]?.group === group) {
      span += gap + (columns[next]?.width ?? 0);
      next++;
    }
    if (index > 0) heading += ' '.repeat(gap);
    if (group === undefined) {
      heading += ' '.repeat(span);
    } else {
      const title = ` ${group} `;
      const left = Math.max(0, Math.floor((span - title.length) / 2));
      heading += ('─'.repeat(left) + title + '─'.repeat(Math.max(0, span - left - title.length))).slice(0, Math.max(span, title.length));
    }
    index = next;
  }
  return heading.trimEnd();
}

const NAME_WIDTH = 15;

// ── the timeline ─────────────────────────────────────────────────────────────────────────
/** How many ticks the whole run has, and which of them fit in `width` cells (the latest ones). */
function timelineWindow(view: View, width: number): { readonly first: number; readonly count: number } {
  // An interrupted run has no future to show.
  const total = view.stage === 'interrupted' ? 1 : Math.max(1, Math.ceil(view.durationMs / view.tickMs));
  const drawn = Math.max(total, ...view.dependencies.map((dependency) => dependency.timeline.length));
  const count = Math.max(1, Math.min(drawn, width));
  const latest = Math.max(...view.dependencies.map((dependency) => dependency.timeline.length), 0);
  const first = Math.max(0, Math.min(drawn - count, latest - count));
  return { first, count };
}

function timelineRow(dependency: DependencyView, first: number, count: number, p: Palette): string {
  let row = '';
  for (let tick = first; tick < first + count; tick++) {
    const state = dependency.timeline[tick];
    row += state === undefined ? p.dim('·') : stateColour(state, p)(STATE_CELL[state]);
  }
  return row;
}

/**
 * The phases under the timeline: each starts with `│` and its label, cut to its length; its
 * number stands in for a label that does not fit (short runs).
 */
function phaseRuler(view: View, first: number, count: number, p: Palette): string {
  const owners: Phase[] = [];
  for (let tick = first; tick < first + count; tick++) owners.push(phaseAt(Math.min(1, (tick * view.tickMs) / view.durationMs)));
  let ruler = '';
  let start = 0;
  while (start < owners.length) {
    const phase = owners[start];
    let end = start;
    while (end < owners.length && owners[end] === phase) end++;
    const room = end - start - 1;
    const label = phase === undefined ? '' : phase.label.length <= room ? phase.label : String(phases.indexOf(phase) + 1).slice(0, room);
    ruler += p.dim('│') + padEnd(label, room);
    start = end;
  }
  return ruler;
}

function timeline(view: View, width: number, p: Palette): string[] {
  const { first, count } = timelineWindow(view, width - NAME_WIDTH - 1);
  const legend = `${p.green('▁')} closed  ${p.yellow('▄')} half-open  ${p.red('█')} open`;
  return [
    `${p.bold('breaker timeline')} ${p.dim(`· one cell per ${seconds(view.tickMs)} ·`)} ${legend}`,
    ...view.dependencies.map((dependency) => `${padEnd(dependency.name, NAME_WIDTH)} ${timelineRow(dependency, first, count, p)}`),
    `${' '.repeat(NAME_WIDTH)} ${phaseRuler(view, first, count, p)}`,
  ];
}

// ── rate limits and hedging ──────────────────────────────────────────────────────────────
type Limited = DependencyView & { readonly limiter: LimiterView };
type Hedged = DependencyView & { readonly hedge: { readonly delay: number } };

const limitedRows = (view: View): Limited[] => view.dependencies.filter((row): row is Limited => row.limiter !== undefined);
const hedgedRows = (view: View): Hedged[] => view.dependencies.filter((row): row is Hedged => row.hedge !== undefined);

/** The permits a burst could take now, of how many at most ("0/2"). */
const permits = (limiter: LimiterView): string => `${Math.floor(limiter.permits)}/${limiter.burst ?? limiter.rate}`;

/** The upstream's `429`s: green while there are none, which is the rate limiter's whole point. */
const vendorRefusals = (row: DependencyView, p: Palette): string =>
  row.totals.upstreamLimited === 0 ? p.green('0') : p.bold(p.red(integer(row.totals.upstreamLimited)));

/** The rate limiters over the last window: what the shop asked, what went out, what waited, what was refused. */
function rateLimitTable(view: View, width: number, p: Palette): string[] {
  const rows = limitedRows(view);
  if (rows.length === 0) return [];
  const columns: Column<Limited>[] = [
    { header: 'rate limit', width: NAME_WIDTH, align: 'left', cell: (row) => p.bold(row.name) },
    { header: 'asked/s', width: 7, align: 'right', cell: (row) => perSecond(row.recent.calls) },
    { header: 'sent/s', width: 6, align: 'right', cell: (row) => perSecond(row.recent.upstreamRequests) },
    { header: 'vendor', width: 6, align: 'right', cell: (row) => vendorText(row.limiter) },
    { header: '429s', width: 4, align: 'right', cell: (row) => vendorRefusals(row, p) },
    { header: 'delayed/s', width: 9, align: 'right', cell: (row) => tinted(perSecond(row.recent.limiterDelays), row.recent.limiterDelays, p.yellow, p) },
    { header: 'refused/s', width: 9, align: 'right', cell: (row) => tinted(perSecond(row.recent.limiterRejections), row.recent.limiterRejections, p.red, p) },
    { header: 'queued', width: 6, align: 'right', cell: (row) => integer(row.limiter.queued) },
    { header: 'permits', width: 7, align: 'right', cell: (row) => permits(row.limiter) },
    { header: 'limiter', width: 7, align: 'left', cell: (row) => p.dim(limitText(row.limiter)) },
  ];
  return table(columns, rows, width, p);
}

/** The hedged stacks over the last window: hedges started and won, and the p99 callers saw next to the upstream's own. */
function hedgeTable(view: View, width: number, p: Palette): string[] {
  const rows = hedgedRows(view);
  if (rows.length === 0) return [];
  const columns: Column<Hedged>[] = [
    { header: 'hedging', width: NAME_WIDTH, align: 'left', cell: (row) => p.bold(row.name) },
    { header: 'calls/s', width: 7, align: 'right', cell: (row) => perSecond(row.recent.calls) },
    { header: 'hedges/s', width: 8, align: 'right', cell: (row) => tinted(perSecond(row.recent.hedges), row.recent.hedges, p.yellow, p) },
    { header: 'won/s', width: 5, align: 'right', cell: (row) => tinted(perSecond(row.recent.hedgeWins), row.recent.hedgeWins, p.green, p) },
    { header: 'p99 shop', width: 8, align: 'right', cell: (row) => p.bold(duration(row.recentP99)) },
    { header: 'p99 upstream', width: 12, align: 'right', cell: (row) => duration(row.recentUpstreamP99) },
    { header: 'sent/s', width: 6, align: 'right', cell: (row) => perSecond(row.recent.upstreamRequests) },
    { header: 'denied/s', width: 8, align: 'right', cell: (row) => tinted(perSecond(row.recent.hedgesDenied), row.recent.hedgesDenied, p.red, p) },
    { header: 'delay', width: 5, align: 'right', cell: (row) => p.dim(duration(row.hedge.delay)) },
  ];
  return table(columns, rows, width, p);
}

// ── the frame ────────────────────────────────────────────────────────────────────────────
function progressBar(view: View, width: number, p: Palette): string {
  const done = Math.max(0, Math.min(width, Math.round((view.elapsedMs / view.durationMs) * width)));
  return p.cyan('━'.repeat(done)) + p.dim('─'.repeat(width - done));
}

function stageText(view: View, p: Palette): string {
  const phaseNumber = phases.indexOf(view.phase) + 1;
  switch (view.stage) {
    case 'running':
      return `phase ${phaseNumber}/${phases.length}  ${p.bold(view.phase.title)}`;
    case 'draining': {
      const inFlight = view.dependencies.reduce((sum, dependency) => sum + dependency.inFlight, 0);
      return `${p.bold('time is up')}: no new calls; ${integer(inFlight)} still in flight`;
    }
    case 'finished':
      return p.bold('finished');
    case 'interrupted':
      return p.bold(p.yellow('interrupted'));
  }
}

/**
 * The full-screen frame for a terminal `width` columns wide and `height` rows high. When it
 * is too short for everything, the footer goes first, then the table of totals (the summary
 * prints them at the end), then the caption of the recent table.
 */
export function renderFrame(view: View, width: number, p: Palette, height = Infinity): string[] {
  const recentColumns: Column<DependencyView>[] = [
    { header: 'dependency', width: NAME_WIDTH, align: 'left', cell: (row) => p.bold(row.name) },
    { header: 'breaker', width: 9, align: 'left', cell: (row) => badge(row.state, p) },
    { header: 'calls', group: 'per second', width: 5, align: 'right', cell: (row) => perSecond(row.recent.calls) },
    { header: 'ok', group: 'per second', width: 5, align: 'right', cell: (row) => tinted(perSecond(row.recent.ok), row.recent.ok, p.green, p) },
    { header: 'fallback', group: 'per second', width: 8, align: 'right', cell: (row) => tinted(perSecond(row.recent.fallbacks), row.recent.fallbacks, p.cyan, p) },
    {
      header: 'rejected',
      group: 'per second',
      width: 8,
      align: 'right',
      cell: (row) => {
        const rejected = rejections(row.recent);
        return tinted(perSecond(rejected), rejected, p.red, p);
      },
    },
    { header: 'timeouts', group: 'per second', width: 8, align: 'right', cell: (row) => tinted(perSecond(row.recent.timeouts), row.recent.timeouts, p.magenta, p) },
    { header: 'p50', group: 'latency', width: 6, align: 'right', cell: (row) => duration(row.recentP50) },
    { header: 'p99', group: 'latency', width: 6, align: 'right', cell: (row) => duration(row.recentP99) },
    { header: 'upstream/s', width: 10, align: 'right', cell: (row) => perSecond(row.recent.upstreamRequests) },
    {
      header: 'bulkhead',
      width: 8,
      align: 'right',
      cell: ({ bulkhead }) => (bulkhead === undefined ? p.dim('—') : `${bulkhead.active}/${bulkhead.maxConcurrent}${bulkhead.maxQueue > 0 ? `+${bulkhead.queued}` : ''}`),
    },
  ];
  const totalColumns: Column<DependencyView>[] = [
    { header: 'since start', width: NAME_WIDTH, align: 'left', cell: (row) => row.name },
    { header: 'calls', width: 6, align: 'right', cell: (row) => integer(row.totals.calls) },
    { header: 'ok', width: 6, align: 'right', cell: (row) => tinted(integer(row.totals.ok), row.totals.ok, p.green, p) },
    { header: 'fallback', width: 8, align: 'right', cell: (row) => tinted(integer(row.totals.fallbacks), row.totals.fallbacks, p.cyan, p) },
    {
      header: 'rejected',
      width: 8,
      align: 'right',
      cell: (row) => {
        const rejected = rejections(row.totals);
        return tinted(integer(rejected), rejected, p.red, p);
      },
    },
    { header: 'timeouts', width: 8, align: 'right', cell: (row) => tinted(integer(row.totals.timeouts), row.totals.timeouts, p.magenta, p) },
    { header: 'retries', width: 7, align: 'right', cell: (row) => tinted(integer(row.totals.retries), row.totals.retries, p.yellow, p) },
    { header: 'opened', width: 6, align: 'right', cell: (row) => tinted(`${row.opened}×`, row.opened, p.red, p) },
    {
      header: 'upstream saw',
      width: 12,
      align: 'right',
      cell: (row) => `${integer(row.upstream.requests)} req`,
    },
  ];

  const elapsed = `${seconds(Math.min(view.elapsedMs, view.durationMs))} of ${seconds(view.durationMs)}`;
  const title = `${p.bold(p.cyan('bulwark'))} ${p.bold('live demo')}  ${p.dim(`upstream ${view.upstreamAt}`)}`;
  const stage = stageText(view, p);
  const barWidth = Math.max(10, Math.min(40, width - visibleWidth(elapsed) - visibleWidth(stage) - 4));
  const policies = [...rateLimitTable(view, width, p), ...hedgeTable(view, width, p)];
  // Sections in the order drawn; on a terminal too short for all, the least telling go first.
  const sections = [
    { keep: 4, lines: [title, `${elapsed}  ${progressBar(view, barWidth, p)}  ${stage}`, p.dim(view.stage === 'running' ? describePhase(view.phase) : ' ')] },
    { keep: 3, lines: ['', p.dim(`last ${seconds(view.windowMs)}, whole calls as callers see them (fallback answers included)`)] },
    { keep: 4, lines: table(recentColumns, view.dependencies, width, p) },
    { keep: 4, lines: policies.length === 0 ? [] : ['', ...policies] },
    { keep: 4, lines: ['', ...timeline(view, width, p)] },
    { keep: 2, lines: ['', ...table(totalColumns, view.dependencies, width, p)] },
    { keep: 1, lines: ['', p.dim('numbers from MetricsRegistry snapshots, the upstream’s counters and breaker events · Ctrl-C stops')] },
  ];
  for (let least = 1; least < 4 && sections.reduce((sum, section) => sum + section.lines.length, 0) > height; least++) {
    for (const section of sections) if (section.keep === least) section.lines = [];
  }
  return sections.flatMap((section) => section.lines).map((line) => fit(line, width));
}

// ── plain lines ──────────────────────────────────────────────────────────────────────────
const stamp = (ms: number): string => `${(ms / 1_000).toFixed(1)}s`.padStart(6);

/** The line that announces a phase, for plain output. */
export function renderPhaseLine(view: View): string {
  const number = phases.indexOf(view.phase) + 1;
  return `${stamp(view.elapsedMs)}  phase ${number}/${phases.length} ${view.phase.title}: ${describePhase(view.phase)}`;
}

/** The states a breaker went through, shortened when it changed many times ("closed→open→…→half-open, 6 changes"). */
function breakerPath(path: readonly CircuitState[]): string {
  if (path.length <= 4) return path.join('→');
  return `${path.slice(0, 2).join('→')}→…→${path.at(-1) ?? ''}, ${path.length - 1} changes`;
}

/**
 * One line per dependency: its recent rates and latency, what its rate limiter or its hedging
 * did, and the breaker's path since the previous line.
 */
export function renderPlainLines(view: View): string[] {
  return view.dependencies.map((row) => {
    const rejected = rejections(row.recent);
    const fields = [
      stamp(view.elapsedMs),
      padEnd(row.name, NAME_WIDTH),
      padEnd(row.state ?? 'untracked', 9),
      `calls ${perSecond(row.recent.calls)}/s`,
      `ok ${perSecond(row.recent.ok)}/s`,
      `fallback ${perSecond(row.recent.fallbacks)}/s`,
      `rejected ${perSecond(rejected)}/s`,
      `timeouts ${perSecond(row.recent.timeouts)}/s`,
      `p50 ${duration(row.recentP50)}`,
      `p99 ${duration(row.recentP99)}`,
      `upstream ${perSecond(row.recent.upstreamRequests)} req/s`,
    ];
    if (row.limiter !== undefined) {
      fields.push(
        `limiter delayed ${perSecond(row.recent.limiterDelays)}/s refused ${perSecond(row.recent.limiterRejections)}/s queued ${integer(row.limiter.queued)} permits ${permits(row.limiter)}`,
        `vendor allows ${vendorText(row.limiter)}, answered 429 to ${integer(row.totals.upstreamLimited)}`,
      );
    }
    if (row.hedge !== undefined) {
      fields.push(
        `hedges ${perSecond(row.recent.hedges)}/s won ${perSecond(row.recent.hedgeWins)}/s denied ${perSecond(row.recent.hedgesDenied)}/s`,
        `upstream p99 ${duration(row.recentUpstreamP99)}`,
      );
    }
    if (row.path.length > 1) fields.push(`breaker ${breakerPath(row.path)}`);
    return fields.join('  ');
  });
}

// ── the summary ──────────────────────────────────────────────────────────────────────────
/** The closing summary, for the normal screen or plain output. */
export function renderSummary(view: View, width: number, p: Palette): string[] {
  const calls = view.dependencies.reduce((sum, row) => sum + row.totals.calls, 0);
  const failures = view.dependencies.reduce((sum, row) => sum + row.totals.failures, 0);
  const requests = view.dependencies.reduce((sum, row) => sum + row.upstream.requests, 0);
  const callColumns: Column<DependencyView>[] = [
    { header: 'stack', width: NAME_WIDTH, align: 'left', cell: (row) => p.bold(row.name) },
    { header: 'calls', width: 6, align: 'right', cell: (row) => integer(row.totals.calls) },
    { header: 'ok', width: 6, align: 'right', cell: (row) => tinted(integer(row.totals.ok), row.totals.ok, p.green, p) },
    { header: 'fallback', width: 8, align: 'right', cell: (row) => tinted(integer(row.totals.fallbacks), row.totals.fallbacks, p.cyan, p) },
    {
      header: 'breaker',
      group: 'rejected',
      width: 7,
      align: 'right',
      cell: (row) => tinted(integer(row.totals.breakerRejections), row.totals.breakerRejections, p.red, p),
    },
    {
      header: 'bulkhead',
      group: 'rejected',
      width: 8,
      align: 'right',
      cell: (row) => tinted(integer(row.totals.bulkheadRejections), row.totals.bulkheadRejections, p.red, p),
    },
    { header: 'timeouts', width: 8, align: 'right', cell: (row) => tinted(integer(row.totals.timeouts), row.totals.timeouts, p.magenta, p) },
    { header: 'retries', width: 7, align: 'right', cell: (row) => tinted(integer(row.totals.retries), row.totals.retries, p.yellow, p) },
    { header: 'p50', group: 'latency', width: 6, align: 'right', cell: (row) => duration(row.latency?.p50) },
    { header: 'p90', group: 'latency', width: 6, align: 'right', cell: (row) => duration(row.latency?.p90) },
    { header: 'p99', group: 'latency', width: 6, align: 'right', cell: (row) => duration(row.latency?.p99) },
  ];
  const upstreamColumns: Column<DependencyView>[] = [
    { header: 'upstream', width: NAME_WIDTH, align: 'left', cell: (row) => p.bold(row.name) },
    { header: 'requests', width: 8, align: 'right', cell: (row) => integer(row.upstream.requests) },
    { header: '200', width: 6, align: 'right', cell: (row) => integer(row.upstream.ok) },
    { header: '500', width: 6, align: 'right', cell: (row) => integer(row.upstream.errors) },
    { header: '503', width: 6, align: 'right', cell: (row) => integer(row.upstream.unavailable) },
    { header: '429', width: 6, align: 'right', cell: (row) => integer(row.upstream.limited) },
    { header: 'dropped', width: 7, align: 'right', cell: (row) => integer(row.upstream.dropped) },
    { header: 'cut off by the caller', width: 21, align: 'right', cell: (row) => integer(row.upstream.abandoned) },
    { header: 'breaker opened', width: 14, align: 'right', cell: (row) => `${row.opened}×` },
  ];
  const ending = view.stage === 'interrupted' ? `interrupted after ${seconds(view.elapsedMs)}` : `${seconds(view.elapsedMs)}`;
  // Interrupted, the calls in flight end with the interrupt's abort: their caller's own signal,
  // which no fallback replaces (a caller that gave up wants no answer).
  const verdict =
    view.stage === 'interrupted'
      ? p.yellow(`${integer(failures)} calls in flight aborted by the interrupt`)
      : failures === 0
        ? p.green('every call answered, none with an error')
        : p.red(`${integer(failures)} calls rejected to their caller`);
  const lines = [
    `${p.bold(p.cyan('bulwark'))} ${p.bold('demo summary')} · ${ending} · ${integer(calls)} calls, ${integer(requests)} upstream requests`,
    verdict,
    '',
    ...table(callColumns, view.dependencies, width, p),
    p.dim('latency: whole calls since the start (fallback answers included), estimated by the registry'),
    '',
    ...table(upstreamColumns, view.dependencies, width, p),
    p.dim('cut off by the caller: its timeout fired, or another hedged request answered first'),
    ...policySummary(view, width, p),
    '',
    ...timeline(view, width, p),
  ];
  return lines.map((line) => fit(line, width));
}

/** The summary's tables of the rate limiters and the hedged stacks, since the start; nothing when the run has neither. */
function policySummary(view: View, width: number, p: Palette): string[] {
  const lines: string[] = [];
  const limited = limitedRows(view);
  if (limited.length > 0) {
    const columns: Column<Limited>[] = [
      { header: 'rate limit', width: NAME_WIDTH, align: 'left', cell: (row) => p.bold(row.name) },
      { header: 'asked', width: 6, align: 'right', cell: (row) => integer(row.totals.calls) },
      { header: 'sent', width: 6, align: 'right', cell: (row) => integer(row.totals.upstreamRequests) },
      { header: 'vendor', width: 6, align: 'right', cell: (row) => vendorText(row.limiter) },
      { header: '429s', width: 4, align: 'right', cell: (row) => vendorRefusals(row, p) },
      { header: 'delayed', width: 7, align: 'right', cell: (row) => tinted(integer(row.totals.limiterDelays), row.totals.limiterDelays, p.yellow, p) },
      { header: 'refused', width: 7, align: 'right', cell: (row) => tinted(integer(row.totals.limiterRejections), row.totals.limiterRejections, p.red, p) },
      { header: 'limiter', width: 7, align: 'left', cell: (row) => p.dim(limitText(row.limiter)) },
    ];
    lines.push('', ...table(columns, limited, width, p));
  }
  const hedged = hedgedRows(view);
  if (hedged.length > 0) {
    const columns: Column<Hedged>[] = [
      { header: 'hedging', width: NAME_WIDTH, align: 'left', cell: (row) => p.bold(row.name) },
      { header: 'calls', width: 6, align: 'right', cell: (row) => integer(row.totals.calls) },
      { header: 'hedges', width: 6, align: 'right', cell: (row) => tinted(integer(row.totals.hedges), row.totals.hedges, p.yellow, p) },
      { header: 'won', width: 5, align: 'right', cell: (row) => tinted(integer(row.totals.hedgeWins), row.totals.hedgeWins, p.green, p) },
      { header: 'denied', width: 6, align: 'right', cell: (row) => tinted(integer(row.totals.hedgesDenied), row.totals.hedgesDenied, p.red, p) },
      { header: 'p99 shop', width: 8, align: 'right', cell: (row) => p.bold(duration(row.latency?.p99)) },
      { header: 'p99 upstream', width: 12, align: 'right', cell: (row) => duration(row.upstreamLatency?.p99) },
      { header: 'delay', width: 6, align: 'right', cell: (row) => p.dim(duration(row.hedge.delay)) },
    ];
    lines.push('', ...table(columns, hedged, width, p), p.dim('p99 shop: whole calls as callers see them; p99 upstream: the server’s own answers'));
  }
  return lines;
}
