/**
 * When the checks a policy asked for with `afterStart` run: once the work entered has started,
 * and late enough that a call answered at once has settled and the check has nothing to do.
 */

const settled = /* @__PURE__ */ Promise.resolve();

function noop(): void {}

/**
 * Queues `checks` after the work now entered has started: one microtask after the function
 * returned, or three when a policy with its own `run` (hedging, chaos) is entered next. Its
 * answer comes up that much later than the function's own (two hops leave a timeout around
 * hedging or chaos arming its timer for every call, three for none), and a check that finds
 * the call settled does nothing.
 */
export function queueChecks(checks: (() => void) | (() => void)[], intoRun: boolean): void {
  if (typeof checks === 'function') queue(checks, intoRun);
  else for (const check of checks) queue(check, intoRun);
}

function queue(check: () => void, intoRun: boolean): void {
  if (intoRun) void settled.then(noop).then(noop).then(check);
  else void settled.then(check);
}
