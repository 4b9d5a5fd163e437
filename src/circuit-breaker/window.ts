/**
 * The sliding windows a {@link CircuitBreaker} keeps its recent outcomes in, for its failure
 * and slow-call rates. Neither arms a timer: a time window drops old outcomes when it is
 * written or read, by the time it is given. Both keep running totals, so reading the counts
 * costs no loop, and both allocate their storage on the first outcome, so a breaker nobody
 * called holds none.
 */

/** What a window records of one outcome: bit 0 set for a failure, bit 1 for a slow call. */
const FAILED = 1;
const SLOW = 2;

/** The shape of a window, as options give it and snapshots carry it. */
export type WindowShape = { readonly calls: number } | { readonly duration: number; readonly buckets: number };

/** A window's contents in a snapshot: the outcomes oldest first, or the live buckets. */
export type WindowContents =
  | {
      readonly calls: number;
      /** One code per outcome, oldest first: 0 success, 1 failure, 2 slow success, 3 slow failure. */
      readonly outcomes: readonly number[];
    }
  | {
      readonly duration: number;
      readonly buckets: number;
      /** The non-empty buckets, oldest first: `[start (epoch ms), calls, failures, slowCalls]`. */
      readonly counts: readonly (readonly [number, number, number, number])[];
    };

/** The outcomes of the last calls or of the last milliseconds, with their totals. */
export interface OutcomeWindow {
  /** Outcomes in the window, as of the last `record` or `advance`. */
  readonly calls: number;
  readonly failures: number;
  readonly slowCalls: number;
  record(failed: boolean, slow: boolean, now: number): void;
  /** Drops what fell out of the window by `now` (a time window); the totals are then current. */
  advance(now: number): void;
  /** Forgets every outcome, keeping the storage for the next ones. */
  clear(): void;
  /** The contents, or `undefined` when the window is empty. */
  save(now: number): WindowContents | undefined;
  /** Replaces the contents with saved ones of the same shape (checked by the caller). */
  load(contents: WindowContents, now: number): void;
}

export function describeShape(shape: WindowShape): string {
  return 'calls' in shape ? `{ calls: ${shape.calls} }` : `{ duration: ${shape.duration}, buckets: ${shape.buckets} }`;
}

export function sameShape(a: WindowShape | undefined, b: WindowShape | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if ('calls' in a) return 'calls' in b && a.calls === b.calls;
  // Stryker disable next-line ConditionalExpression: a count shape has no duration, so a.duration === b.duration fails without the test
  return 'duration' in b && a.duration === b.duration && a.buckets === b.buckets;
}

export function createWindow(shape: WindowShape): OutcomeWindow {
  return 'calls' in shape ? new CountWindow(shape.calls) : new TimeWindow(shape.duration, shape.buckets);
}

/** The last `size` outcomes in a ring buffer of one byte each. */
export class CountWindow implements OutcomeWindow {
  readonly size: number;
  calls = 0;
  failures = 0;
  slowCalls = 0;
  private outcomes: Uint8Array | undefined = undefined;
  /** Where the next outcome goes; once the ring is full, the oldest outcome is there. */
  private next = 0;

  constructor(size: number) {
    this.size = size;
  }

  record(failed: boolean, slow: boolean): void {
    const outcomes = (this.outcomes ??= new Uint8Array(this.size));
    const at = this.next;
    if (this.calls === this.size) {
      const oldest = outcomes[at] ?? 0;
      this.failures -= oldest & FAILED;
      this.slowCalls -= oldest >> 1;
    } else {
      this.calls++;
    }
    const code = (failed ? FAILED : 0) | (slow ? SLOW : 0);
    outcomes[at] = code;
    this.failures += code & FAILED;
    this.slowCalls += code >> 1;
    this.next = at + 1 === this.size ? 0 : at + 1;
  }

  advance(): void {}

  clear(): void {
    // Slots past `calls` are never read before they are written again: no need to zero them.
    this.calls = 0;
    this.failures = 0;
    this.slowCalls = 0;
    this.next = 0;
  }

  save(): WindowContents | undefined {
    const outcomes = this.outcomes;
    if (outcomes === undefined || this.calls === 0) return undefined;
    const oldestAt = this.calls === this.size ? this.next : 0;
    const saved: number[] = [];
    for (let i = 0; i < this.calls; i++) saved.push(outcomes[(oldestAt + i) % this.size] ?? 0);
    return { calls: this.size, outcomes: saved };
  }

  load(contents: WindowContents): void {
    this.clear();
    if (!('outcomes' in contents)) return;
    for (const code of contents.outcomes) this.record((code & FAILED) !== 0, (code & SLOW) !== 0);
  }
}

/**
 * The outcomes of the last `duration` ms, in `buckets` buckets of `duration / buckets` ms
 * each. A bucket is dropped whole, so an outcome leaves the window between
 * `duration − duration / buckets` and `duration` ms after it was recorded. Buckets are
 * numbered by time (`floor(now / width)`), so the same instant falls in the same bucket in
 * every process, which is what lets a snapshot carry them.
 */
export class TimeWindow implements OutcomeWindow {
  readonly duration: number;
  readonly buckets: number;
  calls = 0;
  failures = 0;
  slowCalls = 0;
  private readonly width: number;
  /** Three numbers per bucket: calls, failures, slow calls. Float64 so no count can wrap. */
  private counts: Float64Array | undefined = undefined;
  /** The number of the newest bucket the window holds. */
  // Stryker disable next-line UnaryOperator: never read before advance() sets it (the window is empty until then)
  private newest = -Infinity;

  constructor(duration: number, buckets: number) {
    this.duration = duration;
    this.buckets = buckets;
    this.width = duration / buckets;
  }

  private slot(bucket: number): number {
    const slot = bucket % this.buckets;
    return (slot < 0 ? slot + this.buckets : slot) * 3;
  }

  advance(now: number): void {
    const current = Math.floor(now / this.width);
    if (this.calls === 0) {
      // Every bucket is empty: nothing to drop. Also re-bases the window on a clock that went backwards.
      this.newest = current;
      return;
    }
    const newest = this.newest;
    // A clock that went backwards keeps recording into the newest bucket.
    // Stryker disable next-line EqualityOperator: with current === newest the loop below drops nothing
    if (current <= newest) return;
    // Stryker disable next-line EqualityOperator: a pause of exactly `buckets` buckets empties every slot in the loop as clear() does
    if (current - newest >= this.buckets) {
      this.clear();
    } else {
      // Allocated before `calls` first grew (in record and load), so there while calls > 0.
      const counts = this.counts as Float64Array;
      for (let bucket = newest + 1; bucket <= current; bucket++) {
        const at = this.slot(bucket);
        this.calls -= counts[at] ?? 0;
        this.failures -= counts[at + 1] ?? 0;
        this.slowCalls -= counts[at + 2] ?? 0;
        counts[at] = 0;
        counts[at + 1] = 0;
        counts[at + 2] = 0;
      }
    }
    this.newest = current;
  }

  record(failed: boolean, slow: boolean, now: number): void {
    this.advance(now);
    const counts = (this.counts ??= new Float64Array(this.buckets * 3));
    const at = this.slot(this.newest);
    counts[at] = (counts[at] ?? 0) + 1;
    this.calls++;
    if (failed) {
      counts[at + 1] = (counts[at + 1] ?? 0) + 1;
      this.failures++;
    }
    if (slow) {
      counts[at + 2] = (counts[at + 2] ?? 0) + 1;
      this.slowCalls++;
    }
  }

  clear(): void {
    this.counts?.fill(0);
    this.calls = 0;
    this.failures = 0;
    this.slowCalls = 0;
  }

  save(now: number): WindowContents | undefined {
    this.advance(now);
    const counts = this.counts;
    if (counts === undefined || this.calls === 0) return undefined;
    const saved: [number, number, number, number][] = [];
    for (let bucket = this.newest - this.buckets + 1; bucket <= this.newest; bucket++) {
      const at = this.slot(bucket);
      const calls = counts[at] ?? 0;
      if (calls > 0) saved.push([bucket * this.width, calls, counts[at + 1] ?? 0, counts[at + 2] ?? 0]);
    }
    return { duration: this.duration, buckets: this.buckets, counts: saved };
  }

  load(contents: WindowContents, now: number): void {
    this.clear();
    this.advance(now);
    if (!('counts' in contents)) return;
    const current = this.newest;
    const counts = (this.counts ??= new Float64Array(this.buckets * 3));
    for (const [start, calls, failures, slowCalls] of contents.counts) {
      // A bucket from a clock ahead of this one counts as the newest; one that already left the window is dropped.
      const bucket = Math.min(current, Math.round(start / this.width));
      if (bucket <= current - this.buckets) continue;
      const at = this.slot(bucket);
      counts[at] = (counts[at] ?? 0) + calls;
      counts[at + 1] = (counts[at + 1] ?? 0) + failures;
      counts[at + 2] = (counts[at + 2] ?? 0) + slowCalls;
      this.calls += calls;
      this.failures += failures;
      this.slowCalls += slowCalls;
    }
  }
}
