/**
 * The outcomes a replica of a shared breaker has not reported yet, and what they could do: a
 * batch whose failures could open the circuit, by what this replica knows, is reported at once.
 */
import type { SharedState } from './breaker-script.js';
import type { SharedSettings } from './breaker-options.js';

export class OutcomeBatch {
  /** True when no outcome needs its duration (no `slowCall`): a closed-state call keeps a number. */
  readonly untimed: boolean;
  private readonly settings: SharedSettings;
  /** The generation these outcomes were admitted in: outcomes of another are dropped with the batch. */
  private gen = -1;
  calls = 0;
  private failures = 0;
  private slow = 0;
  /** Failures since the batch's last success (all of them when it has none). */
  private trailing = 0;
  private hadSuccess = false;
  /** A count window's codes (failure + 2 × slow), in order; at most the window's worth is sent. */
  private codes: number[] = [];

  constructor(settings: SharedSettings) {
    this.settings = settings;
    this.untimed = settings.slowCallDuration === undefined;
  }

  /** Adds one outcome; true when the batch could now open the circuit. */
  record(failed: boolean, slow: boolean, gen: number, shared: SharedState | undefined): boolean {
    if (gen !== this.gen) {
      this.take();
      this.gen = gen;
    }
    this.calls++;
    if (failed) {
      this.failures++;
      this.trailing++;
    } else {
      this.trailing = 0;
      this.hadSuccess = true;
    }
    if (slow) this.slow++;
    if (this.settings.windowKind === 'calls') {
      const codes = this.codes;
      codes.push((failed ? 1 : 0) + (slow ? 2 : 0));
      // Older codes would leave the shared window at once: at twice its size, cut to its size.
      if (codes.length === 2 * this.settings.windowSize) codes.splice(0, this.settings.windowSize);
    }
    // A success too: one that brings the calls to minimumCalls can open it by a rate.
    return this.couldOpen(shared);
  }

  /** Consecutive failures across the fleet, as far as this replica knows. */
  consecutiveFailures(shared: SharedState | undefined): number {
    return this.hadSuccess ? this.trailing : (shared?.consecutiveFailures ?? 0) + this.trailing;
  }

  /** Whether the shared state as last read, plus this batch, meets a condition that opens the circuit. */
  couldOpen(shared: SharedState | undefined): boolean {
    if (this.calls === 0) return false;
    const settings = this.settings;
    // A batch with no failure holds a success: its consecutive failures are 0, under any threshold (≥ 1).
    if (this.consecutiveFailures(shared) >= settings.failureThreshold) return true;
    // Without a window both rate thresholds are Infinity: no rate below opens it.
    const calls = (shared?.calls ?? 0) + this.calls;
    if (calls < settings.minimumCalls) return false;
    return ((shared?.failures ?? 0) + this.failures) / calls >= settings.failureRateThreshold || ((shared?.slowCalls ?? 0) + this.slow) / calls >= settings.slowCallRateThreshold;
  }

  /** Whether a success now would tell the shared state nothing: no window, and no failure (here or shared) for it to reset. */
  noNews(shared: SharedState | undefined): boolean {
    return this.settings.windowKind === 'none' && this.failures === 0 && (shared?.consecutiveFailures ?? 0) === 0;
  }

  /** The script's ARGV for a report of this batch (13–19), and an empty batch again. */
  take(): string[] {
    const args = [String(this.gen), this.codes.slice(-this.settings.windowSize).join(''), String(this.calls), String(this.failures), String(this.slow), String(this.trailing), this.hadSuccess ? '1' : '0'];
    this.calls = 0;
    this.failures = 0;
    this.slow = 0;
    this.trailing = 0;
    this.hadSuccess = false;
    this.codes = [];
    return args;
  }
}
