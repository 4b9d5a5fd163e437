/**
 * How an error is named in a log line or a span (src/shared/show.ts): two strings, whatever
 * was thrown.
 */
import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/shared/show.js';

describe('describeError', () => {
  it('names an Error by its name and message, and anything else by its type and text', () => {
    expect(describeError(new RangeError('too many'))).toEqual({ name: 'RangeError', message: 'too many' });
    expect(describeError('down')).toEqual({ name: 'string', message: 'down' });
  });

  it('names a thrown value that cannot be turned into text "(unprintable)"', () => {
    expect(describeError(Object.create(null))).toEqual({ name: 'object', message: '(unprintable)' });
  });
});
