/**
 * HttpError and isHttpError: the message of a call that took one attempt, and an HttpError
 * recognised by its name and status when it comes from another copy of bulwark.
 */
import { HttpError, isHttpError, resilientFetch } from 'bulwark/fetch';
import { describe, expect, it } from 'vitest';

describe('HttpError', () => {
  it('says "1 attempt" for a call sent once', async () => {
    const api = resilientFetch({ retry: false, throwOnTransient: true, fetch: async (_input: string, _init: RequestInit) => new Response('down', { status: 503 }) });
    const error = await api('https://a.test/x', { method: 'DELETE' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).message).toBe('DELETE https://a.test answered 503 after 1 attempt');
  });
});

describe('isHttpError', () => {
  it('knows an HttpError of another copy of bulwark by its name and numeric status', () => {
    expect(isHttpError(Object.assign(new Error('GET https://a.test answered 503 after 1 attempt'), { name: 'HttpError', status: 503 }))).toBe(true);
  });

  it.each([
    ['an Error named HttpError without a status', Object.assign(new Error('x'), { name: 'HttpError' })],
    ['an Error named HttpError with a status that is not a number', Object.assign(new Error('x'), { name: 'HttpError', status: '503' })],
    ['another Error with a status', Object.assign(new TypeError('x'), { status: 503 })],
    ['an object shaped like one that is no Error', { name: 'HttpError', status: 503, message: 'x' }],
    ['undefined', undefined],
  ])('is false for %s', (_kind, value) => {
    expect(isHttpError(value)).toBe(false);
  });
});
