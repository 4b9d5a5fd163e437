/**
 * One run of the demo: starts the upstream (a server per dependency), builds a resilientFetch
 * client per dependency whose policies a metrics registry tracks, plays the scenario under a steady load, shows what happens (a full-screen
 * dashboard, or plain lines), then drains, prints the summary and closes everything it
 * opened, so the process can exit by itself.
 */
import { MetricsRegistry, type CircuitState } from 'bulwark';
import { renderFrame, renderPhaseLine, renderPlainLines, renderSummary, type DependencyView, type View } from './dashboard.js';
import { startLoad } from './load.js';
import {
  LATENCY_BUCKETS,
  breakerState,
  bulkheadLoad,
  callLatency,
  counts,
  limiterLoad,
  rates,
  recentQuantile,
  takeSample,
  upstreamLatency,
  type Sample,
} from './readings.js';
import { phases, playScenario, vendorLimits, type Phase } from './scenario.js';
import { buildDependencies, dependencyNames, type Dependency } from './stacks.js';
import { FullScreen, palette, terminalSize, type Screen } from './terminal.js';
import { WARM_UP_ID, startUpstream, zeroCounters } from './upstream.js';

/** How the run shows itself and how long it lasts. */
export interface DemoOptions {
  /** How long calls keep arriving, in ms; the scenario's phases scale with it. */
  readonly durationMs: number;
  /** `dashboard`: full screen, redrawn in place, in colour. `plain`: periodic lines, no escapes. */
  readonly display: 'dashboard' | 'plain';
  /** Where everything goes: `process.stdout`. */
  readonly output: DemoOutput;
  /** Aborting it ends the run early: the calls in flight are aborted, the summary still printed. */
  readonly interrupt: AbortSignal;
}

/** What the run needs of `process.stdout`. */
export interface DemoOutput extends Screen {
  readonly isTTY?: boolean | undefined;
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

/** How the run ended. */
export interface DemoResult {
  readonly interrupted: boolean;
  /** Calls that rejected to their caller although nothing interrupted them (should be 0: every stack has a fallback). */
  readonly unexpected: number;
}

/** Requests made before the run, in rounds of so many per dependency at once. */
const WARM_UP_ROUNDS = 3;
const WARM_UP_CONCURRENCY = 10;
/** The dashboard samples (and redraws) this often; one timeline cell per tick. */
const TICK_MS = 500;
/** Rates and percentiles on the dashboard cover this much time. */
const DASHBOARD_WINDOW_MS = 2_000;
/** Plain output prints a line per dependency this often, with rates over the same span. */
const PLAIN_EVERY_MS = 1_000;
/** The run the scenario's timings were written for; shorter or longer runs scale them. */
const REFERENCE_DURATION_MS = 20_000;

/** The state a timeline cell shows for a tick: a trial (half-open) or an open circuit says more than the state it ended in. */
function mostTelling(visited: readonly CircuitState[]): CircuitState {
  for (const state of ['half-open', 'open', 'isolated'] as const) if (visited.includes(state)) return state;
  return 'closed';
}

/** What the run keeps about one breaker, from its own `stateChange` events. */
interface BreakerWatch {
  /** States visited during the current tick. */
  visited: CircuitState[];
  /** States visited since the previous plain line. */
  path: CircuitState[];
  readonly timeline: CircuitState[];
  opened: number;
  readonly unsubscribe: () => void;
}

/** Runs the demo once. Never leaves a timer, socket or listener behind, whatever happens. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { durationMs, display, output, interrupt } = options;
  let started = performance.now();
  const elapsed = (): number => performance.now() - started;
  const paint = palette(display === 'dashboard');
  const print = (line: string): void => void output.write(`${line}\n`);

  const upstream = await startUpstream(dependencyNames, { limits: vendorLimits, buckets: LATENCY_BUCKETS });
  const cleanups: (() => void)[] = [];
  const screen = display === 'dashboard' ? new FullScreen(output) : undefined;
  try {
    // The first requests load Node's HTTP client, compile its hot paths and open the
    // connections the load will reuse: done before the clock starts, so that cost does not
    // show up as timeouts in the healthy first phase. The upstream answers them at once and
    // counts them nowhere (nor against a vendor's limit).
    for (let round = 0; round < WARM_UP_ROUNDS; round++) {
      await Promise.all(
        dependencyNames.flatMap((name) =>
          Array.from({ length: WARM_UP_CONCURRENCY }, () => fetch(`${upstream.origins.get(name) ?? ''}/${name}/${WARM_UP_ID}`).then((response) => response.body?.cancel())),
        ),
      );
    }
    upstream.resetCounters();
    started = performance.now();
    // Each client tracks its policies in the registry itself (its `metrics` option), and the
    // fallback around it is tracked next to them: the registry is the run's own, dropped with it.
    const registry = new MetricsRegistry({ buckets: LATENCY_BUCKETS });
    const dependencies = buildDependencies(upstream.origins, registry, durationMs / REFERENCE_DURATION_MS);

    /** Where the upstream listens, as the title says it: `127.0.0.1 :<port> :<port> …`, one port per dependency, in the dashboard's order. */
    const upstreamAt = `127.0.0.1 ${dependencies.map((dependency) => `:${new URL(dependency.origin).port}`).join(' ')}`;
    const watches = new Map<Dependency, BreakerWatch>();
    for (const dependency of dependencies) {
      const initial = dependency.breaker.state;
      const watch: BreakerWatch = {
        visited: [initial],
        path: [initial],
        timeline: [],
        opened: 0,
        unsubscribe: dependency.breaker.on('stateChange', ({ to }) => {
          watch.visited.push(to);
          watch.path.push(to);
          if (to === 'open') watch.opened++;
        }),
      };
      watches.set(dependency, watch);
      cleanups.push(watch.unsubscribe);
    }

    const samples: Sample[] = [];
    const sample = (): Sample => takeSample(elapsed(), registry.snapshot(), upstream);
    samples.push(sample());
    let phase: Phase = phases[0] as Phase;
    let stage: View['stage'] = 'running';

    const view = (now: Sample, windowMs: number): View => {
      // The latest sample at least `windowMs` old; early on, the first one.
      let then = samples[0] ?? now;
      for (const candidate of samples) if (candidate.at <= now.at - windowMs + TICK_MS / 4) then = candidate;
      const rows = dependencies.map((dependency): DependencyView => {
        const watch = watches.get(dependency);
        const latency = callLatency(now, dependency);
        const before = callLatency(then, dependency);
        const totals = counts(now, dependency);
        const bulkhead = bulkheadLoad(now, dependency);
        const limiter = limiterLoad(now, dependency);
        const served = upstreamLatency(now, dependency);
        return {
          name: dependency.name,
          state: breakerState(now, dependency),
          recent: rates(now, then, dependency),
          recentP50: recentQuantile(latency, before, 0.5),
          recentP99: recentQuantile(latency, before, 0.99),
          totals,
          latency,
          inFlight: totals.calls - (latency?.count ?? 0),
          bulkhead:
            bulkhead === undefined || dependency.bulkhead === undefined
              ? undefined
              : { ...bulkhead, maxConcurrent: dependency.bulkhead.maxConcurrent, maxQueue: dependency.bulkhead.maxQueue },
          limiter: limiter === undefined || dependency.rateLimit === undefined ? undefined : { ...limiter, ...dependency.rateLimit, vendor: vendorLimits[dependency.name] },
          hedge: dependency.hedge === undefined ? undefined : { delay: dependency.hedge.delay },
          upstream: now.upstream.get(dependency.name) ?? zeroCounters(),
          upstreamLatency: served,
          recentUpstreamP99: recentQuantile(served, upstreamLatency(then, dependency), 0.99),
          timeline: watch?.timeline ?? [],
          path: watch?.path ?? [],
          opened: watch?.opened ?? 0,
        };
      });
      return {
        elapsedMs: now.at,
        durationMs,
        tickMs: TICK_MS,
        windowMs: now.at > then.at ? now.at - then.at : windowMs,
        upstreamAt,
        phase,
        stage,
        dependencies: rows,
      };
    };

    const draw = (now: Sample): void => {
      const { columns, rows } = terminalSize(output);
      screen?.draw(renderFrame(view(now, DASHBOARD_WINDOW_MS), columns - 1, paint, rows - 1));
    };

    /**
     * Closes timeline cells up to `cells`, one per tick of time passed since the start: a tick
     * that comes late (a busy machine) fills the cells it missed with what it saw, so the
     * timeline stays in step with the clock and with the phases under it.
     */
    const closeTimelineCells = (cells: number): void => {
      for (const watch of watches.values()) {
        const state = mostTelling(watch.visited);
        while (watch.timeline.length < cells) watch.timeline.push(state);
        watch.visited = [watch.visited.at(-1) ?? 'closed'];
      }
    };
    // What a timer callback throws (a bug in a view) ends the run and is thrown from runDemo
    // once the terminal is restored, instead of crashing the process with its message drawn
    // on the alternate screen and lost with it.
    const failed = new AbortController();
    const guarded =
      <A extends unknown[]>(callback: (...args: A) => void) =>
      (...args: A): void => {
        try {
          callback(...args);
        } catch (error) {
          if (!failed.signal.aborted) failed.abort(error);
        }
      };

    let printedAt = 0;
    const tick = (): void => {
      const now = sample();
      samples.push(now);
      // Keep what the windows need, and the very first sample for the early ones.
      while (samples.length > 2 && (samples[1]?.at ?? 0) < now.at - DASHBOARD_WINDOW_MS - 2 * TICK_MS) samples.splice(1, 1);
      const cells = [...watches.values()][0]?.timeline.length ?? 0;
      closeTimelineCells(Math.max(cells + 1, Math.floor(now.at / TICK_MS)));
      if (screen !== undefined) {
        draw(now);
      } else if (now.at - printedAt >= PLAIN_EVERY_MS - TICK_MS / 2) {
        printedAt = now.at;
        for (const line of renderPlainLines(view(now, PLAIN_EVERY_MS))) print(line);
        for (const watch of watches.values()) watch.path = [watch.path.at(-1) ?? 'closed'];
      }
    };

    screen?.start();
    if (screen !== undefined) {
      const redraw = guarded((): void => draw(samples.at(-1) ?? sample()));
      output.on('resize', redraw);
      cleanups.push(() => output.off('resize', redraw));
    } else {
      print(`bulwark demo: ${dependencies.length} dependencies, each called through its own resilientFetch, upstream ${upstreamAt}, ${(durationMs / 1_000).toFixed(1)} s`);
    }

    const stopScenario = playScenario(
      upstream,
      durationMs,
      guarded((next: Phase) => {
        phase = next;
        if (screen === undefined) print(renderPhaseLine(view(sample(), PLAIN_EVERY_MS)));
        else draw(sample());
      }),
    );
    cleanups.push(stopScenario);
    // The phase in play sets what the shop asks of each dependency (the rush of geocoding).
    const load = startLoad(dependencies, interrupt, (dependency) => phase.demand?.[dependency.name] ?? dependency.rate);
    cleanups.push(() => void load.stop()); // stops the arrivals at once, if the run ends by an error
    const ticker = setInterval(guarded(tick), TICK_MS);
    cleanups.push(() => clearInterval(ticker));
    if (screen !== undefined) draw(samples[0] ?? sample());

    await timeIsUp(durationMs, [interrupt, failed.signal]);
    if (failed.signal.aborted) throw failed.signal.reason;
    const interrupted = interrupt.aborted;
    stopScenario();
    stage = interrupted ? 'interrupted' : 'draining';
    if (screen !== undefined) draw(sample());
    else if (!interrupted) print(`${(elapsed() / 1_000).toFixed(1).padStart(5)}s  time is up: no new calls; waiting for the ${load.inFlight} in flight`);
    // Interrupted, the calls in flight reject at once with the interrupt's reason (it is their
    // caller's signal); otherwise they finish normally, within the stacks' timeouts.
    await load.stop();
    clearInterval(ticker);
    if (failed.signal.aborted) throw failed.signal.reason;
    if (stage === 'draining') stage = 'finished';

    const last = sample();
    // The stretch since the last tick gets its cell too, when it is more than a sliver.
    closeTimelineCells(Math.ceil(last.at / TICK_MS - 0.25));
    screen?.close();
    if (screen === undefined) print('');
    for (const line of renderSummary(view(last, DASHBOARD_WINDOW_MS), screen === undefined ? 120 : terminalSize(output).columns - 1, paint)) print(line);
    return { interrupted, unexpected: load.unexpected };
  } finally {
    screen?.close();
    for (const cleanup of cleanups.reverse()) cleanup();
    await upstream.close();
  }
}

/** Resolves after `ms`, or as soon as one of `signals` aborts; leaves no timer or listener behind. */
function timeIsUp(ms: number, signals: readonly AbortSignal[]): Promise<void> {
  if (signals.some((signal) => signal.aborted)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const signal of signals) signal.addEventListener('abort', done, { once: true });
  });
}
