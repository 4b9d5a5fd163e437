/**
 * Errors built without a stack trace, for the core and the subpaths alike (bulwark/redis builds
 * its refusals here too; the core exports only the error classes).
 */

/**
 * Builds an error (an open circuit's, a full bulkhead's, a rate limit's refusal) without capturing a stack trace:
 * `stack` holds the name and message only. A refusal is the expected answer of a policy doing
 * its job, often thousands of times a second while a dependency is down, and a stack costs
 * more than the rest of the refusal several times over (V8 walks up to ten frames, all of them
 * bulwark's own or the caller's synchronous ones). The error's fields say what a log needs.
 */
export function withoutStack<E extends Error>(build: () => E): E {
  const errorType = Error as { stackTraceLimit?: number };
  const limit = errorType.stackTraceLimit;
  if (typeof limit !== 'number') return build();
  errorType.stackTraceLimit = 0;
  let error: E;
  try {
    error = build();
  } finally {
    errorType.stackTraceLimit = limit;
  }
  // V8 then writes `stack` as "Name: message"; JavaScriptCore (Bun, Safari) writes none at all,
  // and a logger's `error.stack.split('\n')` would throw.
  // Stryker disable next-line ConditionalExpression: where V8 wrote a stack it reads "Name: message" (formatted at this first read; every refusal has a message), so writing it again changes nothing.
  if (typeof error.stack !== 'string') {
    Object.defineProperty(error, 'stack', { value: `${error.name}: ${error.message}`, writable: true, configurable: true });
  }
  return error;
}
