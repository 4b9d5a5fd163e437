/**
 * A replica's view of a shared breaker's state: what Redis last answered or pushed, with its
 * times moved to this replica's clock. The replica decides calls from it alone.
 */
import type { CircuitBreakerStats, CircuitState, CircuitStateChangeReason } from 'bulwark';
import type { SharedState } from './breaker-script.js';
import type { LastSeen } from './breaker-local.js';

type Announce = (from: CircuitState, to: CircuitState, reason: CircuitStateChangeReason) => void;

export class SharedView {
  state: CircuitState = 'closed';
  /** The generation of the state seen (-1: none yet): outcomes of calls admitted in another are dropped. */
  // Stryker disable next-line UnaryOperator: generations start at the server's time in ms, so none is ever 1 either.
  gen = -1;
  /** When the open circuit turns half-open, on this replica's clock. */
  retryAt = 0;
  openedAt: number | undefined = undefined;
  /** The answer the view was last built from; `undefined` until the first. */
  shared: SharedState | undefined = undefined;
  /** When it was last built (this replica's clock). */
  // Stryker disable next-line UnaryOperator: read only once an answer was taken, which sets it.
  at: number = -Infinity;
  /** The server's clock minus this replica's, from the last answer. */
  offset = 0;
  /** True while changes are pushed and the view was read since the subscription (re)started. */
  pushing = false;
  /** When the subscription was last confirmed or came back; `undefined` while it is down. */
  pushLiveSince: number | undefined = undefined;
  /** Until when this replica refuses half-open calls without asking (every trial was taken). */
  trialsFullUntil = 0;
  // Stryker disable next-line UnaryOperator: compared only once the view took an answer, whose generation is a server time in ms, never 1.
  private halfOpenAnnounced = -1;
  private readonly announce: Announce;

  constructor(announce: Announce) {
    this.announce = announce;
  }

  /** The state now: an open circuit whose break has ended is half-open (announced once). */
  effective(now: number): CircuitState {
    if (this.state !== 'open' || now < this.retryAt) return this.state;
    if (this.halfOpenAnnounced !== this.gen) {
      this.halfOpenAnnounced = this.gen;
      this.announce('open', 'half-open', 'recovery-timeout');
    }
    return 'half-open';
  }

  /** Takes a script's answer, sent at `sentAt`, announcing a change from `from` (default: the view's state). */
  answered(answer: SharedState, sentAt: number, from?: CircuitState): void {
    const receivedAt = Date.now();
    if (this.pushLiveSince !== undefined && sentAt >= this.pushLiveSince) this.pushing = true;
    this.offset = answer.now - (sentAt + receivedAt) / 2;
    if (from === undefined) {
      if (answer.gen < this.gen) return; // older than a change already pushed
      from = this.shared === undefined ? answer.state : this.effective(receivedAt);
    }
    this.take(answer, receivedAt, from);
  }

  /** A change another replica made (`gen state retryAt reason opens openedAt`, server times). */
  pushed(text: string): void {
    const [gen, state, retryAt, reason, opens, openedAt] = text.split(' ');
    const shared = this.shared;
    if (shared === undefined || Number(gen) <= this.gen) return;
    const now = Date.now();
    const from = this.effective(now);
    const closed = state === 'closed';
    this.take(
      {
        ...shared,
        gen: Number(gen),
        state: state as SharedState['state'],
        retryAt: Number(retryAt),
        // Stryker disable next-line ArithmeticOperator: a pushed state's `now` is never read (only an answer's sets the offset).
        now: now + this.offset,
        // Stryker disable next-line StringLiteral: the script publishes six fields, the reason never missing.
        reason: reason ?? '',
        consecutiveFailures: closed ? 0 : shared.consecutiveFailures,
        consecutiveOpens: Number(opens),
        calls: closed ? 0 : shared.calls,
        failures: closed ? 0 : shared.failures,
        slowCalls: closed ? 0 : shared.slowCalls,
        trials: 0,
        trialSuccesses: 0,
        openedAt: closed || Number(openedAt) < 0 ? undefined : Number(openedAt),
      },
      now,
      from,
    );
  }

  /** A manual change made here, before Redis has it. */
  manual(to: 'isolated' | 'closed'): void {
    this.state = to;
    this.trialsFullUntil = 0;
  }

  private take(answer: SharedState, at: number, from: CircuitState): void {
    if (answer.gen !== this.gen) this.trialsFullUntil = 0;
    this.shared = answer;
    this.at = at;
    this.gen = answer.gen;
    this.state = answer.state;
    this.retryAt = answer.retryAt - this.offset;
    this.openedAt = answer.openedAt === undefined ? undefined : answer.openedAt - this.offset;
    const to = this.effective(at);
    // A state nobody has changed yet (new, or lost with a restart) reads as restored.
    if (from !== to) this.announce(from, to, (answer.reason === '' ? 'restored' : answer.reason) as CircuitStateChangeReason);
  }

  /** The view with the counts behind it (see `RedisCircuitBreaker.stats`). */
  stats(now: number): CircuitBreakerStats {
    const state = this.effective(now);
    const shared = this.shared;
    const calls = shared?.calls ?? 0;
    const failures = shared?.failures ?? 0;
    const slowCalls = shared?.slowCalls ?? 0;
    return {
      state,
      calls,
      failures,
      slowCalls,
      failureRate: calls === 0 ? 0 : failures / calls,
      slowCallRate: calls === 0 ? 0 : slowCalls / calls,
      consecutiveFailures: shared?.consecutiveFailures ?? 0,
      consecutiveOpens: shared?.consecutiveOpens ?? 0,
      openedAt: this.openedAt,
      retryAfter: state === 'open' ? this.retryAt - now : state === 'isolated' ? Infinity : 0,
      trialsInFlight: state === 'half-open' ? (shared?.trials ?? 0) : 0,
      trialSuccesses: state === 'half-open' ? (shared?.trialSuccesses ?? 0) : 0,
    };
  }

  /** What the local stand-in starts from when Redis goes down; `undefined` when nothing was seen. */
  lastSeen(now: number): LastSeen | undefined {
    const shared = this.shared;
    return shared === undefined ? undefined : { state: this.effective(now), retryAt: this.retryAt, openedAt: this.openedAt, shared };
  }
}
