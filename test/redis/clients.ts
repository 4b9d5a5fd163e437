/** Clients of each family the tests run against, connected to one server, with errors kept quiet. */
import { Redis as IORedis } from 'ioredis';
import { Valkey } from 'iovalkey';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { RedisServer } from './server.js';

export interface TestClient {
  readonly client: never;
  /** Runs a raw command (SCRIPT FLUSH, DEL…). */
  command(...args: string[]): Promise<unknown>;
  quit(): Promise<void>;
}

export type Family = 'ioredis' | 'node-redis' | 'iovalkey';

export async function connectClient(family: Family, port: number): Promise<TestClient> {
  if (family === 'node-redis') {
    const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: () => 50 } });
    client.on('error', () => {});
    await client.connect();
    return {
      client: client as never,
      command: (...args) => client.sendCommand(args),
      quit: async () => {
        await client.disconnect().catch(() => {});
      },
    };
  }
  const Client = family === 'ioredis' ? IORedis : (Valkey as unknown as typeof IORedis);
  const client = new Client({ port, host: '127.0.0.1', retryStrategy: () => 50, maxRetriesPerRequest: null, lazyConnect: true });
  client.on('error', () => {});
  await client.connect();
  return {
    client: client as never,
    command: (name, ...args) => client.call(name as string, ...args),
    quit: async () => {
      client.disconnect();
    },
  };
}

/**
 * One redis-server for the test file (started before its tests, stopped after) and the clients
 * its tests open, each quit after its test. `client(family, port?)` connects to that server,
 * or to `port` (a server of the test's own).
 */
export function useRedisServer(): { client(family: Family, port?: number): Promise<TestClient> } {
  let server: RedisServer | undefined;
  const open: TestClient[] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server?.close();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.quit()));
  });
  return {
    async client(family, port = (server as RedisServer).port) {
      const c = await connectClient(family, port);
      open.push(c);
      return c;
    },
  };
}

/** A promise's outcome as a value: `{ value }` or `{ error }`. */
export const settle = <T,>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> => promise.then((value) => ({ value }), (error: unknown) => ({ error }));
