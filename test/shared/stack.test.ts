/**
 * Refusals are built without a stack trace (src/shared/stack.ts): the stack line says what the
 * error is, and every other error keeps its full trace.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { withoutStack } from '../../src/shared/stack.js';

const limit = Error.stackTraceLimit;
afterEach(() => {
  Error.stackTraceLimit = limit;
});

describe('withoutStack', () => {
  it('builds the error with its name and message as the whole stack, and leaves the limit as it was', () => {
    const refusal = withoutStack(() => new RangeError('bulkhead full'));
    expect(refusal.stack).toBe('RangeError: bulkhead full');
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('later').stack?.split('\n').length).toBeGreaterThan(1); // later errors keep their trace
  });

  it('restores the limit even when building the error throws', () => {
    expect(() =>
      withoutStack(() => {
        throw new Error('constructor bug');
      }),
    ).toThrow('constructor bug');
    expect(Error.stackTraceLimit).toBe(limit);
  });

  it('writes "Name: message" as the stack where the runtime wrote none (JavaScriptCore), still writable', () => {
    const error = withoutStack(() => {
      const built = new TypeError('no stack here');
      Object.defineProperty(built, 'stack', { value: undefined, writable: true, configurable: true });
      return built;
    });
    expect(error.stack).toBe('TypeError: no stack here');
    expect(Object.getOwnPropertyDescriptor(error, 'stack')).toMatchObject({ writable: true, configurable: true });
    expect(error.stack?.split('\n')).toEqual(['TypeError: no stack here']);
  });
});
