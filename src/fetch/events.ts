/** The events of a resilient fetch, on the emitter every policy uses (src/shared/emitter.ts). */
import { Emitter } from '../shared/emitter.js';

/** Events of one client, or of one origin's part of it. */
export interface ResilientFetchEvents {
  /**
   * A call answered with a response (any status, a transient one included): its `method`,
   * `origin` (never its path or query string) and `status`, and the `attempts` it took.
   */
  response: { readonly method: string; readonly origin: string; readonly status: number; readonly attempts: number };
  /**
   * A call ended badly: with a transient status (returned, or thrown as an `HttpError`) after
   * its retries, or with an error (a network error, a timeout, an open circuit): its `method`,
   * `origin` and `attempts`; `status` is set for a response, `error` for an error. Not emitted
   * for a caller's abort.
   */
  requestFailed: {
    readonly method: string;
    readonly origin: string;
    readonly attempts: number;
    readonly status: number | undefined;
    readonly error: unknown;
  };
}

export const EVENT_NAMES: readonly (keyof ResilientFetchEvents)[] = ['response', 'requestFailed'];

/** The events of a client, or of one origin's part of it. */
export class FetchEmitter extends Emitter<ResilientFetchEvents> {
  constructor() {
    super(EVENT_NAMES);
  }
}
