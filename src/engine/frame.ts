/**
 * The policies of one call entered together, with what each needs when it is left.
 */
import type { CallObserver } from './observe.js';
import type { Scope, WorkTracker } from './scope.js';

/** What a policy asked for in `enter` beyond its token: kept only for the few that ask. */
interface SlotExtras {
  /** The scope it was entered in, when it differs from the frame's first. */
  entry: Scope | undefined;
  /** Its `trackWork` tracker (the call can be answered early), or `true` to release right after it is left. */
  work: WorkTracker | true | undefined;
  /** The abort scope it opened, forgotten once it is left. */
  opened: Scope | undefined;
}

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
   * For each observed policy, by slot: the observer that saw its call start (at `2 × slot`)
   * and its token (at `2 × slot + 1`). One array, sized once for the whole frame.
   */
  observations: unknown[] | undefined = undefined;
  /** The slot of a policy whose `enter` made the call wait, and whether it let it in. */
  waitingSlot = -1;
  admitted = true;
  // What each policy's enter returned, by slot: fields for the first five (a whole stack,
  // usually), so keeping allocates nothing; an array past them.
  private token0: unknown = undefined;
  private token1: unknown = undefined;
  private token2: unknown = undefined;
  private token3: unknown = undefined;
  private token4: unknown = undefined;
  private moreTokens: unknown[] | undefined = undefined;
  private extras: (SlotExtras | undefined)[] | undefined = undefined;

  constructor(from: number, base: Scope) {
    this.from = from;
    this.to = from;
    this.base = base;
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

  private extrasOf(slot: number): SlotExtras {
    const all = (this.extras ??= []);
    return (all[slot] ??= { entry: undefined, work: undefined, opened: undefined });
  }

  /** The scope the policy at `slot` was entered in. */
  entryScope(slot: number): Scope {
    return this.extras?.[slot]?.entry ?? this.base;
  }

  /** Records the scope of a policy entered in another scope than the first one's. */
  setEntryScope(slot: number, scope: Scope): void {
    if (scope !== this.base) this.extrasOf(slot).entry = scope;
  }

  setWork(slot: number, work: WorkTracker | true): void {
    this.extrasOf(slot).work = work;
  }

  setOpened(slot: number, scope: Scope): void {
    this.extrasOf(slot).opened = scope;
  }

  /** What the policy at `slot` asked for beyond its token, if anything. */
  extrasAt(slot: number): SlotExtras | undefined {
    return this.extras?.[slot];
  }

  observe(slot: number, observer: CallObserver, token: number, size: number): void {
    const observations = (this.observations ??= new Array<unknown>(2 * size));
    observations[2 * slot] = observer;
    observations[2 * slot + 1] = token;
  }
}
