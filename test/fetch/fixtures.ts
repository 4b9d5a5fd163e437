/**
 * What bulwark/fetch's tests share: the fetches every behaviour is checked with (Node's global
 * fetch and undici's), a server per test file, and a clock a hundred times faster than real
 * time, shared by the client and the server, so a `Retry-After: 2` is 20 real ms.
 */
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { fastClock, startServer, type TestServer } from './server.js';

/** The fetches every behaviour runs against: [name, fetch]. */
export const fetches = [
  ['global fetch', globalThis.fetch],
  // undici's types are its own (a Response of its streams): the same shape, another declaration.
  ['undici fetch', undiciFetch as unknown as typeof fetch],
] as const;

export const clock = fastClock(100);

/** Starts a server for the file (before all tests), with its script and requests cleared before each test. */
export function useServer(): { readonly server: TestServer } {
  const handle = {} as { server: TestServer };
  beforeAll(async () => {
    handle.server = await startServer(clock.now);
  });
  beforeEach(() => handle.server.reset());
  afterAll(() => handle.server?.close());
  return handle;
}

/** Resolves once `condition` holds, checking every real ms (at most `within` real ms). */
export async function until(condition: () => boolean, within = 2_000): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > within) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
