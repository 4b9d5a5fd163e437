/**
 * The event source of every policy (src/shared/emitter.ts): what a subscriber is told when it
 * subscribes wrongly, and how a failing listener is named in the report.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/shared/emitter.js';

interface Events {
  retry: { attempt: number };
  injected: { fault: string };
  Open: undefined;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('Emitter', () => {
  const make = () => new Emitter<Events>(['retry', 'injected', 'Open']);

  it('refuses an unknown event, listing the known ones', () => {
    expect(() => make().on('retyr' as never, () => {})).toThrow(new TypeError('Unknown event "retyr": expected one of "retry", "injected", "Open"'));
  });

  it('refuses a listener that is not a function, naming the event and the value', () => {
    expect(() => make().on('retry', 'log' as never)).toThrow(new TypeError('The listener for "retry" must be a function, got "log"'));
  });

  it.each([
    ['retry', 'a "retry" listener'],
    ['injected', 'an "injected" listener'],
    ['Open', 'an "Open" listener'],
  ] as const)('names a %s listener that throws "%s" in the report, and goes on to the next listener', (event, named) => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const emitter = make();
    const error = new Error('listener bug');
    const next = vi.fn();
    emitter.on(event, () => {
      throw error;
    });
    emitter.on(event, next);
    emitter.emit(event, undefined as never);
    expect(reported).toHaveBeenCalledWith(`bulwark: ${named} failed`, error);
    expect(next).toHaveBeenCalledTimes(1);
  });
});
