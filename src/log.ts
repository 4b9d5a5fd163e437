import type { LogDescription, Policy } from './engine/contract.js';
import type { Unsubscribe } from './events.js';
import { MetricsRegistry, watchPolicies } from './metrics/registry.js';
import { namedPolicies, type NamedPolicy, type PolicyKind } from './metrics/named.js';
import { systemClock, type Clock } from './shared/clock.js';
import { BUILTIN_LOGGED_EVENTS } from './shared/metric-catalog.js';
import { reportCallbackError, watchReturned } from './shared/report.js';
import * as validate from './shared/validate.js';

/** The levels {@link logPolicyEvents} writes at. */
export type LogLevel = 'info' | 'warn' | 'error';

/** The policy events {@link logPolicyEvents} can write: those of bulwark's policies, and any a policy of your own describes. */
export type LoggedEvent = 'stateChange' | 'rejected' | 'giveUp' | 'retry' | 'timeout' | 'fallback' | (string & {});

/**
 * A logger {@link logPolicyEvents} writes to: anything with `info`, `warn` and `error`
 * methods, such as `console`, pino, bunyan or winston.
 */
export interface PolicyLogger {
  /** Writes a line at level `'info'`, with the fields and message in the order `style` says. */
  info(...args: any[]): unknown;
  /** Writes a line at level `'warn'`. */
  warn(...args: any[]): unknown;
  /** Writes a line at level `'error'`. */
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
  /** The policy's kind (`'circuit-breaker'`). */
  readonly kind: PolicyKind;
  /** The event the line is about (`'stateChange'`). */
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

const LEVEL_CHOICES: readonly (LogLevel | 'off')[] = ['info', 'warn', 'error', 'off'];

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
  /** How a summary counts the repeats: `'rejections'`. */
  private readonly plural: string;
  private open = false;
  private repeated = 0;
  private timer: unknown = undefined;

  constructor(settings: Settings, base: PolicyLogFields, level: LogLevel, label: string, plural: string) {
    this.settings = settings;
    this.base = base;
    this.level = level;
    this.label = label;
    this.plural = plural;
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
    this.settings.write(this.level, { ...this.base, repeated, intervalMs: interval }, `${this.label}: ${repeated} more ${this.plural} in the last ${interval} ms`);
  }
}

/** Subscribes the lines of one policy; returns what unsubscribes them (writing pending summaries first, so no count is lost). */
function logPolicy(settings: Settings, { description, kind, name }: NamedPolicy): Unsubscribe {
  const { write } = settings;
  const label = `${description.label ?? kind} ${JSON.stringify(name)}`;
  const unsubscribes: Unsubscribe[] = [];
  const repeatedEvents: RepeatedEvent[] = [];
  const on = description.on;
  if (on === undefined) return () => {};
  for (const log of description.logs ?? []) {
    const given = settings.levels[log.event];
    const level = given ?? log.level;
    if (level === 'off') continue; // an event that is off gets no listener at all
    if (!log.perCall) {
      unsubscribes.push(
        on(log.event, (payload) => {
          const lineLevel = typeof level === 'function' ? level(payload) : level;
          write(lineLevel, { policy: name, kind, event: log.event, ...fieldsOf(log, payload) }, messageOf(log, payload, label));
        }),
      );
      continue;
    }
    const base: PolicyLogFields = { policy: name, kind, event: log.event };
    // A level that depends on the payload is read from the first event of each window.
    let repeated: RepeatedEvent | undefined;
    unsubscribes.push(
      on(log.event, (payload) => {
        repeated ??= remember(new RepeatedEvent(settings, base, typeof level === 'function' ? level(payload) : level, label, log.plural ?? `${log.event} events`));
        repeated.log(fieldsOf(log, payload), messageOf(log, payload, label));
      }),
    );
  }

  function remember(repeated: RepeatedEvent): RepeatedEvent {
    repeatedEvents.push(repeated);
    return repeated;
  }

  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    for (const unsubscribe of unsubscribes) unsubscribe();
    for (const repeated of repeatedEvents) repeated.stop();
  };
}

/** A line's fields from a policy's description; a describer that throws loses its fields, not the line. */
function fieldsOf(log: LogDescription, payload: unknown): Record<string, unknown> {
  try {
    return log.fields(payload);
  } catch (error) {
    reportCallbackError(`the log fields of a "${log.event}" event`, error);
    return {};
  }
}

function messageOf(log: LogDescription, payload: unknown, label: string): string {
  try {
    return log.message(payload, label);
  } catch (error) {
    reportCallbackError(`the log message of a "${log.event}" event`, error);
    return `${label}: ${log.event}`;
  }
}

/** The policies a registry tracks now. */
function trackedBy(registry: MetricsRegistry): NamedPolicy[] {
  const tracked: NamedPolicy[] = [];
  watchPolicies(registry, (policy) => {
    tracked.push(policy);
    return () => {};
  })();
  return tracked;
}

function isLogger(value: unknown): value is PolicyLogger {
  if (typeof value !== 'object' && typeof value !== 'function') return false;
  if (value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate['info'] === 'function' && typeof candidate['warn'] === 'function' && typeof candidate['error'] === 'function';
}

function validateLevels(value: unknown, known: readonly string[] | undefined): Partial<Record<LoggedEvent, LogLevel | 'off'>> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`logPolicyEvents levels must be an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const levels: Partial<Record<LoggedEvent, LogLevel | 'off'>> = {};
  for (const [event, level] of Object.entries(value)) {
    if (known !== undefined && !known.includes(event)) {
      throw new RangeError(`logPolicyEvents levels: unknown event ${JSON.stringify(event)}, expected one of ${known.map((name) => JSON.stringify(name)).join(', ')}`);
    }
    if (level === undefined) continue;
    levels[event] = validate.oneOf(`logPolicyEvents levels.${event}`, level, LEVEL_CHOICES);
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
  const isRegistry = target instanceof MetricsRegistry;
  if (isRegistry && opts.name !== undefined) throw new TypeError('logPolicyEvents name cannot be given with a MetricsRegistry: its policies are logged under their registry names');
  const named = isRegistry ? trackedBy(target) : namedPolicies('logPolicyEvents', target, opts.name);
  // A registry may track policies of other kinds later: with none tracked yet, any event is accepted.
  const events = isRegistry && named.length === 0 ? undefined : [...new Set([...BUILTIN_LOGGED_EVENTS, ...named.flatMap(({ description }) => (description.logs ?? []).map((log) => log.event))])];
  const levels = validateLevels(opts.levels, events);
  const summaryInterval = opts.summaryInterval === undefined ? 10_000 : validate.duration('logPolicyEvents summaryInterval', opts.summaryInterval);
  const clock = opts.clock === undefined ? systemClock : validate.clock('logPolicyEvents clock', opts.clock);
  const write: Write =
    style === 'object-first'
      ? (level, fields, message) => {
          try {
            watchReturned('the logger', logger[level](fields, message));
          } catch (thrown) {
            reportCallbackError('the logger', thrown);
          }
        }
      : (level, fields, message) => {
          try {
            watchReturned('the logger', logger[level](message, fields));
          } catch (thrown) {
            reportCallbackError('the logger', thrown);
          }
        };
  const settings: Settings = { write, levels, summaryInterval, clock };

  if (target instanceof MetricsRegistry) return watchPolicies(target, (tracked) => logPolicy(settings, tracked));
  const stops = named.map((policy) => logPolicy(settings, policy));
  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}
