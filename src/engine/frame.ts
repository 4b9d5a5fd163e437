/**
 * The policies of one call entered together, with what each needs when it is left.
 */
import type { CallObserver } from './observe.js';
import type { Scope } from './scope.js';

/**
 * The policies from `from` (inclusive) to `to` (exclusive) of a stack, entered in one go and
 * left in one reaction to what they wrap. Positions inside the frame are slots: `index - from`.
 */
export class Frame {
  readonly from: number;
  to: number;
  /** The scope the first policy was entered in. */
  readonly base: Scope;
  /**
   * While entering, the scope the next policy is entered in; while leaving, the scope inside
   * the next policy to leave. The scopes between it and `base` were opened by the policies of
   * this frame (each knows which), so leaving one finds its own by walking up: no per-policy
   * record is kept.
   */
  cursor: Scope;
  /**
   * For each observed policy, by slot: the observer that saw its call start (at `2 × slot`)
   * and its token (at `2 × slot + 1`). One array, sized once for the whole frame.
   */
  observations: unknown[] | undefined = undefined;
  /** The slot of a policy whose `enter` made the call wait and has not let it in; -1 once it did. */
  waitingSlot = -1;
  /**
   * One bit per slot (the first 31) whose policy called `trackWork` in a call nothing can
   * answer early: its work ends when it is left, so `released` runs right then, with no tracker.
   */
  releaseAfterLeave = 0;
  // What each policy's enter returned, by slot: fields for the first five (a whole stack,
  // usually), so keeping allocates nothing; an array past them.
  private token0: unknown = undefined;
  private token1: unknown = undefined;
  private token2: unknown = undefined;
  private token3: unknown = undefined;
  private token4: unknown = undefined;
  private moreTokens: unknown[] | undefined = undefined;

  constructor(from: number, base: Scope) {
    this.from = from;
    this.to = from;
    this.base = base;
    this.cursor = base;
  }

  keep(slot: number, token: unknown): void {
    switch (slot) {
      case 0:
        this.token0 = token;
        break;
      case 1:
        this.token1 = token;
        break;
      case 2:
        this.token2 = token;
        break;
      case 3:
        this.token3 = token;
        break;
      case 4:
        this.token4 = token;
        break;
      default:
        (this.moreTokens ??= [])[slot - 5] = token;
    }
  }

  token(slot: number): unknown {
    switch (slot) {
      case 0:
        return this.token0;
      case 1:
        return this.token1;
      case 2:
        return this.token2;
      case 3:
        return this.token3;
      case 4:
        return this.token4;
      default:
        return this.moreTokens?.[slot - 5];
    }
  }

  /**
   * The scope the policy at `slot` was entered in, when it is the next to leave: the cursor,
   * above the scopes that policy opened.
   */
  entryScope(slot: number): Scope {
    let scope = this.cursor;
    while (scope !== this.base && scope.openedBy(slot)) scope = scope.parent;
    return scope;
  }

  /** The policy at `slot` is left: the scopes it opened are closed, and the cursor moves to the one it was entered in. */
  closeScopes(slot: number): void {
    let scope = this.cursor;
    while (scope !== this.base && scope.openedBy(slot)) {
      scope.close();
      scope = scope.parent;
    }
    this.cursor = scope;
  }

  /** Moves the cursor above the scopes the policy at `slot` opened, closing none (it never let the call in). */
  skipScopes(slot: number): void {
    let scope = this.cursor;
    while (scope !== this.base && scope.openedBy(slot)) scope = scope.parent;
    this.cursor = scope;
  }

  observe(slot: number, observer: CallObserver, token: number, size: number): void {
    // Stryker disable next-line ArrayDeclaration: the size only spares growing the array; an empty one holds the same entries.
    const observations = (this.observations ??= new Array<unknown>(2 * size));
    observations[2 * slot] = observer;
    observations[2 * slot + 1] = token;
  }
}
