/**
 * The command line of `npm run demo`: its options, its signals and its exit code.
 *
 *   npm run demo                      20 s, a live dashboard when stdout is a terminal
 *   npm run demo -- --duration 8      8 s; the scenario's phases scale with it
 *   npm run demo -- --plain           periodic lines instead of the dashboard (also NO_COLOR, or no terminal)
 *
 * Exit codes: 0 at the end of a run (also when the reader of its output went away, as with
 * `| head`), 130 after Ctrl-C (SIGINT), 143 after SIGTERM, 2 for a bad option, 1 if a call
 * ever rejected to its caller (every stack has a fallback, so that would be a bug).
 */
import { runDemo } from './run.js';

/** What the command line asked for. */
export interface DemoArguments {
  readonly durationMs: number;
  readonly plain: boolean;
  readonly help: boolean;
}

/** The usage text. */
export const usage = `usage: npm run demo -- [--duration <seconds>] [--plain]

  --duration <seconds>  how long the run lasts (default 20); the scenario scales with it
  --plain               periodic plain lines instead of the live dashboard
                        (also when NO_COLOR is set or stdout is not a terminal)
  --help                this text`;

const MAX_DURATION_SECONDS = 86_400;

/** Reads the options; throws a `RangeError` or `TypeError` that names the bad one. */
export function parseArguments(argv: readonly string[]): DemoArguments {
  let durationMs = 20_000;
  let plain = false;
  let help = false;
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] ?? '';
    const [flag, inline] = argument.startsWith('--') && argument.includes('=') ? [argument.slice(0, argument.indexOf('=')), argument.slice(argument.indexOf('=') + 1)] : [argument, undefined];
    switch (flag) {
      case '--duration': {
        const value = inline ?? argv[++index];
        if (value === undefined) throw new TypeError('--duration needs a number of seconds, e.g. --duration 8');
        const seconds = value.trim() === '' ? Number.NaN : Number(value);
        if (!Number.isFinite(seconds) || seconds <= 0) {
          throw new RangeError(`--duration must be a positive number of seconds, got ${JSON.stringify(value)}`);
        }
        // Timers cannot wait longer than 2^31 - 1 ms (about 24.8 days); a day is plenty.
        if (seconds > MAX_DURATION_SECONDS) {
          throw new RangeError(`--duration must be at most ${MAX_DURATION_SECONDS} seconds (a day), got ${JSON.stringify(value)}`);
        }
        durationMs = seconds * 1_000;
        break;
      }
      case '--plain':
        if (inline !== undefined) throw new TypeError(`--plain takes no value, got ${JSON.stringify(argument)}`);
        plain = true;
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new TypeError(`unknown option ${JSON.stringify(argument)}`);
    }
  }
  return { durationMs, plain, help };
}

const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** Runs the demo as the command line asks; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let options: DemoArguments;
  try {
    options = parseArguments(argv);
  } catch (error) {
    process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n\n${usage}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }

  const colourAllowed = (process.env['NO_COLOR'] ?? '') === '' && process.env['TERM'] !== 'dumb';
  const display = process.stdout.isTTY === true && colourAllowed && !options.plain ? 'dashboard' : 'plain';

  // Ctrl-C ends the run early but cleanly: calls aborted, summary printed, terminal restored.
  // A second Ctrl-C does not wait (the dashboard restores the terminal on exit all the same),
  // but one that follows the first within a second is the same keypress relayed: `tsx`
  // passes the signal on to this process when it did not see it arrive here.
  const interrupt = new AbortController();
  let received: { readonly signal: keyof typeof SIGNAL_EXIT_CODES; readonly at: number } | undefined;
  const onSignal = (signal: keyof typeof SIGNAL_EXIT_CODES): void => {
    if (received !== undefined) {
      if (performance.now() - received.at > 1_000) process.exit(SIGNAL_EXIT_CODES[signal]);
      return;
    }
    received = { signal, at: performance.now() };
    interrupt.abort(new Error(`interrupted by ${signal}`));
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  // `npm run demo | head`: once the reader has gone, stop quietly instead of dying of EPIPE.
  const onOutputError = (error: NodeJS.ErrnoException): void => {
    if (error.code !== 'EPIPE') throw error;
    interrupt.abort(error);
  };
  process.stdout.on('error', onOutputError);

  // If something ever kept the process alive after the run, say so instead of hanging; unref'd,
  // it never delays a normal exit.
  setTimeout(() => {
    process.stderr.write('demo: still running long after its end: something kept the process alive\n');
    process.exit(1);
  }, options.durationMs + 15_000).unref();

  try {
    const result = await runDemo({ durationMs: options.durationMs, display, output: process.stdout, interrupt: interrupt.signal });
    if (received !== undefined) return SIGNAL_EXIT_CODES[received.signal];
    if (interrupt.signal.aborted) return 0; // the reader of the output went away: nothing went wrong here
    if (result.unexpected > 0) {
      process.stderr.write(`demo: ${result.unexpected} calls rejected to their caller; every stack should have answered\n`);
      return 1;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.stdout.off('error', onOutputError);
  }
}

