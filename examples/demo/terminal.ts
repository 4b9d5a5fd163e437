/**
 * Plain ANSI escapes for the demo's dashboard, and the bookkeeping that leaves the terminal as
 * it was found: whatever ends the run (its end, Ctrl-C, a crash), the cursor comes back, the
 * alternate screen is left and colours are reset.
 */

/** A colour or weight applied to a piece of text; the identity when colours are off. */
export type Paint = (text: string) => string;

/** The styles the demo uses. */
export interface Palette {
  readonly bold: Paint;
  readonly dim: Paint;
  readonly red: Paint;
  readonly green: Paint;
  readonly yellow: Paint;
  readonly magenta: Paint;
  readonly cyan: Paint;
}

/** Styles that paint with SGR escapes when `enabled`, and return the text as is otherwise. */
export function palette(enabled: boolean): Palette {
  const paint =
    (open: string, close: string): Paint =>
    (text) =>
      enabled ? `\x1b[${open}m${text}\x1b[${close}m` : text;
  return {
    bold: paint('1', '22'),
    dim: paint('2', '22'),
    red: paint('31', '39'),
    green: paint('32', '39'),
    yellow: paint('33', '39'),
    magenta: paint('35', '39'),
    cyan: paint('36', '39'),
  };
}

// CSI sequences (colours, cursor moves, modes) and OSC sequences (titles, links).
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/** The text without its escape sequences: what a person sees. */
export function stripAnsi(text: string): string {
  return text.replace(ESCAPES, '');
}

/** How many columns `text` takes on screen (every character the demo prints is one column wide). */
export function visibleWidth(text: string): number {
  let width = 0;
  for (const _ of stripAnsi(text)) width++;
  return width;
}

/** Pads `text` with spaces on the right to `width` visible columns. */
export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - visibleWidth(text)));
}

/** Pads `text` with spaces on the left to `width` visible columns. */
export function padStart(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - visibleWidth(text))) + text;
}

/**
 * Cuts `text` to `width` visible columns, keeping its escapes (and, when it has any, resetting
 * the colours at the end), so a narrow terminal never wraps a line and breaks the layout.
 */
export function fit(text: string, width: number): string {
  if (visibleWidth(text) <= width) return text;
  let result = '';
  let shown = 0;
  let last = 0;
  let escaped = false;
  for (const match of text.matchAll(ESCAPES)) {
    escaped = true;
    const index = match.index;
    for (const char of text.slice(last, index)) {
      if (shown === width) break;
      result += char;
      shown++;
    }
    result += match[0];
    last = index + match[0].length;
  }
  for (const char of text.slice(last)) {
    if (shown === width) break;
    result += char;
    shown++;
  }
  return escaped ? `${result}\x1b[0m` : result;
}

/** The escapes of a full-screen view. */
export const screen = {
  /** Switches to the alternate screen (the shell's scrollback stays untouched) and hides the cursor. */
  enter: '\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J',
  /** Resets colours, shows the cursor and goes back to the normal screen. */
  leave: '\x1b[0m\x1b[?25h\x1b[?1049l',
  /** Moves the cursor to the top left corner, where a frame starts. */
  home: '\x1b[H',
  /** Clears from the cursor to the end of the line. */
  clearLine: '\x1b[K',
  /** Clears from the cursor to the end of the screen. */
  clearBelow: '\x1b[J',
} as const;

/** Where a full-screen view writes: `process.stdout`, or a stand-in in tests. */
export interface Screen {
  write(text: string): unknown;
  readonly columns?: number | undefined;
  readonly rows?: number | undefined;
}

/**
 * The size of the terminal behind `output`; 100 × 40 when it does not say (a pseudo-terminal
 * nobody sized reports 0 × 0).
 */
export function terminalSize(output: Screen): { readonly columns: number; readonly rows: number } {
  const columns = output.columns ?? 0;
  const rows = output.rows ?? 0;
  return { columns: columns > 0 ? columns : 100, rows: rows > 0 ? rows : 40 };
}

/**
 * A full-screen view on the alternate screen, redrawn in place. `close()` restores the terminal
 * and may be called any number of times; a process that exits while the view is open (a crash,
 * `process.exit` elsewhere) restores it from the `exit` event, which still allows synchronous
 * writes to a terminal.
 */
export class FullScreen {
  private open = false;
  private readonly output: Screen;
  private readonly restoreOnExit = (): void => this.close();

  constructor(output: Screen) {
    this.output = output;
  }

  /** Enters the alternate screen and hides the cursor. */
  start(): void {
    if (this.open) return;
    this.open = true;
    process.once('exit', this.restoreOnExit);
    this.output.write(screen.enter);
  }

  /** Draws one frame over the previous one, cut to the terminal's size. */
  draw(lines: readonly string[]): void {
    if (!this.open) return;
    const { columns, rows } = terminalSize(this.output);
    // Short of the last column and the last row: writing there could wrap or scroll the screen.
    const shown = lines.slice(0, Math.max(1, rows - 1)).map((line) => fit(line, columns - 1) + screen.clearLine);
    this.output.write(screen.home + shown.join('\n') + screen.clearBelow);
  }

  /** Restores the terminal: colours reset, cursor shown, normal screen back. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    process.removeListener('exit', this.restoreOnExit);
    this.output.write(screen.leave);
  }
}
