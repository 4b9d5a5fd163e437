/** Clients of each family the tests run against, connected to one server, with errors kept quiet. */
import { Redis as IORedis } from 'ioredis';
import { Valkey } from 'iovalkey';
import { createClient } from 'redis';

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
