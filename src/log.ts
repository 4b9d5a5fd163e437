import { Bulkhead } from './bulkhead.js';
import { CircuitBreaker, type CircuitState } from './circuit-breaker.js';
import { systemClock, type Clock } from './clock.js';
import { reportListenerError, type Unsubscribe } from './events.js';
import { watchReturned } from './report.js';
import { FallbackPolicy } from './fallback.js';
import { MetricsRegistry, namedPolicies, type NamedPolicy, type PolicyKind } from './metrics.js';
import type { Policy } from './policy.js';
import { RetryPolicy } from './retry.js';
import { TimeoutPolicy } from './timeout.js';
import * as validate from './validate.js';

/** The levels {@link logPolicyEvents} writes at. */
export type LogLevel = 'info' | 'warn' | 'error';

/** The policy events {@link logPolicyEvents} can write. */
export type LoggedEvent = 'stateChange' | 'rejected' | 'giveUp' | 'retry' | 'timeout' | 'fallback';

/**
 * A logger {@link logPolicyEvents} writes to: anything with `info`, `warn` and `error`
 * methods, such as `console`, pino, bunyan or winston.
 */
export interface PolicyLogger {
  info(...args: any[]): unknown;
  warn(...args: any[]): unknown;
  error(...args: any[]): unknown;
}

/**
 * The structured fields of every line {@link logPolicyEvents} writes. Besides these, an event
 * adds its own: `from`/`to`/`reason` (stateChange), `reason` (rejected), `retryAfter` (a breaker's
 * rejection, when finite), `attempts` (giveUp), `attempt`/`delay` (retry), `timeout`
 * (timeout), `error: { name, message }` (every event about an error), and `repeated` /
 * `intervalMs` on a summary line.
 */
export interface PolicyLogFields {
  /** The policy's name. */
  readonly policy: string;
  readonly kind: PolicyKind;
  readonly event: LoggedEvent;
  readonly [field: string]: unknown;
}

/** Options of {@link logPolicyEvents}. */
export interface LogPolicyEventsOptions {
  /**
   * How each line is passed to the logger: `'object-first'` calls `logger.warn(fields,
   * message)`, the signature of pino and bunyan; `'message-first'` calls `logger.warn(message,
   * fields)`, the signature of winston. `console` prints both.
   * @default 'object-first'
   */
  style?: 'object-first' | 'message-first' | undefined;
  /**
   * For one policy: the name written in its lines, in place of the `name` it was built with.
   * For a composed stack: the name of its members built without one (the others keep theirs).
   * Not allowed with a `MetricsRegistry`, whose names are used.
   */
  name?: string | undefined;
  /**
   * The level of each event, or `'off'` to write none. A state change defaults to `'warn'`
   * when the circuit opens or is isolated and to `'info'` when it turns half-open or closes;
   * a level given here applies to every state change.
   * @default { stateChange: 'warn' | 'info', rejected: 'warn', giveUp: 'warn', timeout: 'warn', fallback: 'info', retry: 'off' }
   */
  levels?: Partial<Record<LoggedEvent, LogLevel | 'off'>> | undefined;
  /**
   * Events that happen once per call (every event but a state change) are written in full
   * the first time; more of the same event from the same policy within this many ms are
   * counted and written as one summary line when the interval ends, so an outage that
   * rejects 10 000 calls writes two lines, not 10 000. `0` writes every event.
   * @default 10_000
   */
  summaryInterval?: number | undefined;
  /**
   * The source of the summary timers. A timer is armed only while a summary is pending, and
   * does not keep a Node process alive.
   * @default systemClock
   */
  clock?: Clock | undefined;
}

const LOGGED_EVENTS: readonly LoggedEvent[] = ['stateChange', 'rejected', 'giveUp', 'retry', 'timeout', 'fallback'];
const LEVEL_CHOICES: readonly (LogLevel | 'off')[] = ['info', 'warn', 'error', 'off'];
const DEFAULT_LEVELS: Readonly<Record<Exclude<LoggedEvent, 'stateChange'>, LogLevel | 'off'>> = {
  rejected: 'warn',
  giveUp: 'warn',
  retry: 'off',
  timeout: 'warn',
  fallback: 'info',
};

/** How a kind is called in a message. */
const KIND_LABELS: Readonly<Record<PolicyKind, string>> = {
  'circuit-breaker': 'circuit breaker',
  retry: 'retry',
  bulkhead: 'bulkhead',
  timeout: 'timeout',
  fallback: 'fallback',
};

/** How a summary line counts the events it stands for. */
const REPEATED_NOUNS: Readonly<Record<Exclude<LoggedEvent, 'stateChange'>, string>> = {
  rejected: 'rejections',
  giveUp: 'give-ups',
  retry: 'retries',
  timeout: 'timeouts',
  fallback: 'fallbacks',
};

const STATE_VERBS: Readonly<Record<CircuitState, string>> = {
  open: 'opened',
  'half-open': 'half-open, letting trial calls through',
  closed: 'closed',
  isolated: 'isolated',
};

/** An error as two strings, safe for every logger and for JSON (an Error object serializes to `{}`). */
function describeError(error: unknown): { readonly name: string; readonly message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message };
  try {
    return { name: typeof error, message: String(error) };
  } catch {
    return { name: typeof error, message: '(unprintable)' };
  }
}

/** Writes one line; a logger that throws is reported and never reaches the call that emitted the event. */
type Write = (level: LogLevel, fields: PolicyLogFields, message: string) => void;

interface Settings {
  readonly write: Write;
  readonly levels: Partial<Record<LoggedEvent, LogLevel | 'off'>>;
  readonly summaryInterval: number;
  readonly clock: Clock;
}

/**
 * The lines of one per-call event of one policy. The first event is written in full and opens
 * a window of `summaryInterval` ms; events within it are counted, and written as one summary
 * line when it ends, which opens the next window. A window with no event closes, and the next
 * event is written in full again.
 */
class RepeatedEvent {
  private readonly settings: Settings;
  private readonly base: PolicyLogFields;
  private readonly level: LogLevel;
  private readonly label: string;
  private open = false;
  private repeated = 0;
  private timer: unknown = undefined;

  constructor(settings: Settings, base: PolicyLogFields, level: LogLevel, label: string) {
    this.settings = settings;
    this.base = base;
    this.level = level;
    this.label = label;
  }

  log(fields: Record<string, unknown>, message: string): void {
    if (this.open) {
      this.repeated++;
      return;
    }
    this.settings.write(this.level, { ...this.base, ...fields }, message);
    if (this.settings.summaryInterval > 0) {
      this.open = true;
      this.arm();
    }
  }

  /** Stops the window, writing what it counted so far. */
  stop(): void {
    if (this.timer !== undefined) this.settings.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.open = false;
    this.writeSummary();
  }

  private arm(): void {
    const timer = this.settings.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.repeated === 0) {
        this.open = false;
        return;
      }
      this.writeSummary();
      this.arm();
    }, this.settings.summaryInterval);
    // A pending summary must not keep alive a process that has nothing else to do.
    const unref = (timer as { unref?: unknown } | null)?.unref;
    if (typeof unref === 'function') unref.call(timer);
    this.timer = timer;
  }

  private writeSummary(): void {
    const repeated = this.repeated;
    if (repeated === 0) return;
    this.repeated = 0;
    const interval = this.settings.summaryInterval;
    const event = this.base.event as Exclude<LoggedEvent, 'stateChange'>;
    this.settings.write(this.level, { ...this.base, repeated, intervalMs: interval }, `${this.label}: ${repeated} more ${REPEATED_NOUNS[event]} in the last ${interval} ms`);
  }
}

function levelOf(settings: Settings, event: Exclude<LoggedEvent, 'stateChange'>): LogLevel | 'off' {
  return settings.levels[event] ?? DEFAULT_LEVELS[event];
}

/** Subscribes the lines of one policy; returns what unsubscribes them (writing pending summaries first, so no count is lost). */
function logPolicy(settings: Settings, { policy, kind, name }: NamedPolicy): Unsubscribe {
  const { write } = settings;
  const label = `${KIND_LABELS[kind]} ${JSON.stringify(name)}`;
  const unsubscribes: Unsubscribe[] = [];
  const repeatedEvents: RepeatedEvent[] = [];
  /** The writer of a per-call event, or undefined when its level is 'off'. */
  const perCall = (event: Exclude<LoggedEvent, 'stateChange'>): RepeatedEvent | undefined => {
    const level = levelOf(settings, event);
    if (level === 'off') return undefined;
    const repeated = new RepeatedEvent(settings, { policy: name, kind, event }, level, label);
    repeatedEvents.push(repeated);
    return repeated;
  };

  if (policy instanceof CircuitBreaker) {
    const forced = settings.levels.stateChange;
    if (forced !== 'off') {
      unsubscribes.push(
        policy.on('stateChange', ({ from, to, reason }) => {
          const level = forced ?? (to === 'open' || to === 'isolated' ? 'warn' : 'info');
          write(level, { policy: name, kind, event: 'stateChange', from, to, reason }, `${label} ${STATE_VERBS[to]} (was ${from}, ${reason})`);
        }),
      );
    }
    const rejected = perCall('rejected');
    if (rejected !== undefined) {
      unsubscribes.push(
        policy.on('rejected', ({ error }) => {
          const fields: Record<string, unknown> = { reason: error.state, error: describeError(error) };
          if (Number.isFinite(error.retryAfter)) fields['retryAfter'] = error.retryAfter;
          rejected.log(fields, `${label} rejected a call: ${error.message}`);
        }),
      );
    }
  } else if (policy instanceof Bulkhead) {
    const rejected = perCall('rejected');
    if (rejected !== undefined) {
      unsubscribes.push(policy.on('rejected', ({ error, reason }) => rejected.log({ reason, error: describeError(error) }, `${label} rejected a call: ${error.message}`)));
    }
  } else if (policy instanceof RetryPolicy) {
    const giveUp = perCall('giveUp');
    if (giveUp !== undefined) {
      unsubscribes.push(
        policy.on('giveUp', ({ error, attempts }) => {
          const described = describeError(error);
          giveUp.log({ attempts, error: described }, `${label} gave up after ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}: ${described.message}`);
        }),
      );
    }
    const retry = perCall('retry');
    if (retry !== undefined) {
      unsubscribes.push(
        policy.on('retry', ({ error, attempt, delay }) => {
          const described = describeError(error);
          retry.log({ attempt, delay, error: described }, `${label}: attempt ${attempt} failed, retrying in ${Math.round(delay)} ms: ${described.message}`);
        }),
      );
    }
  } else if (policy instanceof TimeoutPolicy) {
    const timedOut = perCall('timeout');
    if (timedOut !== undefined) unsubscribes.push(policy.on('timeout', ({ timeout }) => timedOut.log({ timeout }, `${label} expired after ${timeout} ms`)));
  } else if (policy instanceof FallbackPolicy) {
    const fallback = perCall('fallback');
    if (fallback !== undefined) {
      unsubscribes.push(
        policy.on('fallback', ({ error }) => {
          const described = describeError(error);
          fallback.log({ error: described }, `${label} answered in place of a failed call: ${described.message}`);
        }),
      );
    }
  }

  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    for (const unsubscribe of unsubscribes) unsubscribe();
    for (const repeated of repeatedEvents) repeated.stop();
  };
}

function isLogger(value: unknown): value is PolicyLogger {
  if (typeof value !== 'object' && typeof value !== 'function') return false;
  if (value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate['info'] === 'function' && typeof candidate['warn'] === 'function' && typeof candidate['error'] === 'function';
}

function validateLevels(value: unknown): Partial<Record<LoggedEvent, LogLevel | 'off'>> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`logPolicyEvents levels must be an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const levels: Partial<Record<LoggedEvent, LogLevel | 'off'>> = {};
  for (const [event, level] of Object.entries(value)) {
    if (!LOGGED_EVENTS.includes(event as LoggedEvent)) {
      throw new RangeError(`logPolicyEvents levels: unknown event ${JSON.stringify(event)}, expected one of ${LOGGED_EVENTS.map((known) => JSON.stringify(known)).join(', ')}`);
    }
    const known = event as LoggedEvent;
    if (level === undefined) continue;
    levels[known] = validate.oneOf(`logPolicyEvents levels.${known}`, level, LEVEL_CHOICES);
  }
  return levels;
}

/**
 * Writes what a policy goes through to a logger, as structured lines: a circuit breaker's
 * state changes (`warn` when it opens or is isolated, `info` when it turns half-open or
 * closes: the dependency recovered), refusals by a breaker or a bulkhead (`warn`), a retry's
 * give-ups (`warn`), timeouts (`warn`) and fallback answers (`info`); never a line per
 * successful call. Events that come once per call are summarised: the first is written in
 * full, and the same event of the same policy within `summaryInterval` ms is counted into one
 * line per interval.
 *
 * `target` is a bulwark policy, a composed stack (its named members: see
 * {@link MetricsRegistry.track} for the naming rules), or a `MetricsRegistry`, whose policies
 * are logged under their registry names while they are tracked, including ones tracked
 * later. A logger that throws is reported (like a listener that throws) and never fails a
 * call. Returns the function that removes every listener and timer, writing any pending
 * summary first.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * const stop = logPolicyEvents(payments, pino());                                // pino: (fields, message)
 * logPolicyEvents(inventory, winstonLogger, { style: 'message-first' });         // winston: (message, fields)
 * logPolicyEvents(registry, console, { levels: { fallback: 'off', giveUp: 'error' } });
 * ```
 */
export function logPolicyEvents(target: Policy<any> | MetricsRegistry, logger: PolicyLogger, options?: LogPolicyEventsOptions): () => void {
  const opts = validate.options('logPolicyEvents', options, ['style', 'name', 'levels', 'summaryInterval', 'clock']);
  if (!isLogger(logger)) {
    throw new TypeError(`logPolicyEvents(target, logger): logger must have info(), warn() and error() methods, got ${logger === null ? 'null' : typeof logger}`);
  }
  const style = opts.style === undefined ? 'object-first' : validate.oneOf('logPolicyEvents style', opts.style, ['object-first', 'message-first'] as const);
  const levels = validateLevels(opts.levels);
  const summaryInterval = opts.summaryInterval === undefined ? 10_000 : validate.duration('logPolicyEvents summaryInterval', opts.summaryInterval);
  const clock = opts.clock === undefined ? systemClock : validate.clock('logPolicyEvents clock', opts.clock);
  const write: Write =
    style === 'object-first'
      ? (level, fields, message) => {
          try {
            watchReturned('the logger', logger[level](fields, message));
          } catch (thrown) {
            reportListenerError('logger', thrown);
          }
        }
      : (level, fields, message) => {
          try {
            watchReturned('the logger', logger[level](message, fields));
          } catch (thrown) {
            reportListenerError('logger', thrown);
          }
        };
  const settings: Settings = { write, levels, summaryInterval, clock };

  if (target instanceof MetricsRegistry) {
    if (opts.name !== undefined) throw new TypeError('logPolicyEvents name cannot be given with a MetricsRegistry: its policies are logged under their registry names');
    return target.watchPolicies((tracked) => logPolicy(settings, tracked));
  }
  const stops = namedPolicies('logPolicyEvents', target, opts.name).map((named) => logPolicy(settings, named));
  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}
