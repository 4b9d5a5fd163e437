/**
 * What decides a shared breaker's calls while Redis is down: a core `CircuitBreaker` of the
 * same options, started from the last shared state the replica saw. Each call runs a stand-in
 * through it that settles as the real call's outcome was classified, so the local breaker
 * counts, opens, times slow calls and holds trial places exactly as the core does.
 */
import { CircuitOpenError, type CircuitBreaker, type CircuitState, type CircuitStateChangeReason, type Admission } from 'bulwark';
import { MAX_TIMER_DELAY } from '../shared/clock.js';
import { reportUncaught } from '../shared/report.js';
import type { SharedState } from './breaker-script.js';

/** A call the local breaker admitted: how its outcome reaches the stand-in. */
export interface LocalToken {
  readonly controller: AbortController;
  abandoned: boolean;
  /** The call's outcome, as the shared breaker classified it. */
  outcome(failed: boolean): void;
  /** The work of an abandoned call has ended: a trial's place is free. */
  settle(): void;
}

/** The view a replica hands over when Redis goes down. */
export interface LastSeen {
  readonly state: CircuitState;
  readonly retryAt: number;
  readonly openedAt: number | undefined;
  readonly shared: SharedState;
}

/** A call waiting for an admission: the shared state's, a lease's, or the local breaker's. */
export interface Waiting {
  admission: Admission;
  /** Set once it is answered, or when its caller left: nothing may answer it again. */
  done: boolean;
}

export class LocalStandIn {
  readonly breaker: CircuitBreaker;
  private readonly failed: symbol;
  private quiet = false;

  constructor(breaker: CircuitBreaker, failed: symbol, announce: (from: CircuitState, to: CircuitState, reason: CircuitStateChangeReason) => void) {
    this.breaker = breaker;
    this.failed = failed;
    breaker.on('stateChange', ({ from, to, reason }) => {
      if (!this.quiet) announce(from, to, reason);
    });
  }

  /** Runs the call's stand-in through the local breaker: granted when it admits it, refused with its error. */
  decide(waiting: Waiting, rejected: (error: CircuitOpenError) => void): void {
    const controller = new AbortController();
    let token: LocalToken | undefined;
    const failed = this.failed;
    this.breaker
      .execute(
        () =>
          new Promise<void>((resolve, reject) => {
            // Stryker disable next-line BooleanLiteral: released() reads it after onValue/onError settled the stand-in (outcome) or set it (notCounted); settle() on a settled stand-in does nothing
            token = { controller, abandoned: false, outcome: (fails) => (fails ? reject(failed) : resolve()), settle: () => resolve() };
            if (waiting.done) {
              // The caller left while the local breaker was deciding: not counted, nothing held.
              controller.abort();
              resolve();
              return;
            }
            // Stryker disable next-line BooleanLiteral: only the refusal path reads it after this, and the stand-in of an admitted call rejects with the failure marker or an abort, never a CircuitOpenError; the admission ignores a second answer
            waiting.done = true;
            waiting.admission.grant(token);
          }),
        { signal: controller.signal },
      )
      .catch((error: unknown) => {
        // Answered already (admitted: its outcome goes by the token), or its caller left.
        if (waiting.done) return;
        // Stryker disable next-line BooleanLiteral: nothing answers a refused call again (it waits nowhere else); kept for the Waiting contract
        waiting.done = true;
        if (error instanceof CircuitOpenError) rejected(error);
        waiting.admission.refuse(error);
      });
  }

  /** Starts from the shared state last seen (quietly: for the callers nothing changed). */
  adopt(seen: LastSeen | undefined): void {
    if (seen === undefined) return;
    const now = Date.now();
    const { state, shared } = seen;
    const opened = state === 'open' || state === 'half-open';
    const openedAt = Math.min(seen.openedAt ?? now, now);
    const retryAt = Math.max(seen.retryAt, openedAt);
    this.quietly(() =>
      this.breaker.restore({
        version: 1,
        savedAt: now,
        state,
        consecutiveFailures: shared.consecutiveFailures,
        consecutiveOpens: shared.consecutiveOpens,
        // Stryker disable next-line ConditionalExpression: restore() drops a closed snapshot's openedAt (a closed breaker has none)
        openedAt: state === 'closed' ? null : openedAt,
        retryAt: state === 'open' ? retryAt : null,
        breakDuration: opened ? Math.min(retryAt - openedAt, MAX_TIMER_DELAY) : null,
        trialSuccesses: 0,
        slowCallDuration: null,
        window: null,
      }),
    );
  }

  /** Applies `isolate()` or `reset()` of the shared breaker here too. */
  manual(to: 'isolated' | 'closed'): void {
    this.quietly(() => (to === 'isolated' ? this.breaker.isolate() : this.breaker.reset()));
  }

  private quietly(change: () => void): void {
    this.quiet = true;
    try {
      change();
    } catch (error) {
      reportUncaught('bulwark: RedisCircuitBreaker could not hand its state to the local breaker', error);
    } finally {
      this.quiet = false;
    }
  }
}
