/**
 * bulwark/redis on a local Redis Cluster of three masters, with ioredis's `Cluster` and
 * node-redis's `createCluster`: every script touches one slot (no CROSSSLOT), and a NOSCRIPT
 * (a node that never saw the script, or flushed it) is answered on the node owning the key.
 */
import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitedError } from '../../src/index.js';
import { RedisRateLimiter } from '../../src/redis/index.js';
import { RedisCluster } from './cluster.js';

let cluster: RedisCluster;

beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);
afterAll(async () => {
  await cluster?.close();
});

interface ClusterClient {
  client: never;
  quit(): Promise<void>;
}

async function connect(family: 'ioredis' | 'node-redis'): Promise<ClusterClient> {
  if (family === 'ioredis') {
    const client = new Cluster(cluster.nodes, { lazyConnect: true });
    client.on('error', () => {});
    await client.connect();
    return { client: client as never, quit: async () => void client.disconnect() };
  }
  const client = createCluster({ rootNodes: cluster.nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })) });
  client.on('error', () => {});
  await client.connect();
  return { client: client as never, quit: async () => void (await client.disconnect().catch(() => {})) };
}

const ok = () => 'ran';
const settle = <T,>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error }));

/** Names whose keys fall on every master of the cluster (one each): the scripts run on each node. */
function namesOnEveryNode(prefix: string, suffix: string): string[] {
  const byOwner = new Map<number, string>();
  for (let i = 0; byOwner.size < 3 && i < 200; i++) {
    const name = `${prefix}-${i}`;
    const owner = cluster.ownerOf(`{bulwark:${name}}:${suffix}`);
    if (!byOwner.has(owner)) byOwner.set(owner, name);
  }
  return [...byOwner.values()];
}

describe.each(['ioredis', 'node-redis'] as const)('RedisRateLimiter on a 3-master Redis Cluster with %s', (family) => {
  it('shares one bucket per name on whichever node owns it, and reloads its script after SCRIPT FLUSH on every node', async () => {
    const a = await connect(family);
    const b = await connect(family);
    try {
      const names = namesOnEveryNode(`cluster-${family}`, 'rate');
      expect(names).toHaveLength(3);
      for (const name of names) {
        const limiters = [a, b].map((c) => new RedisRateLimiter(c.client, { name, rate: 3, interval: 60_000, timeout: 2_000 }));
        const failures: unknown[] = [];
        for (const l of limiters) l.on('storeError', ({ error }) => failures.push(error));
        const first = await Promise.all([0, 1, 0, 1, 0].map((i) => settle((limiters[i] as RedisRateLimiter).execute(ok))));
        expect(failures).toEqual([]);
        expect(first.filter((answer) => 'value' in answer)).toHaveLength(3);
        expect(first.filter((answer) => 'error' in answer && answer.error instanceof RateLimitedError)).toHaveLength(2);
        expect(limiters.every((l) => l.storeUp)).toBe(true);
      }
      cluster.onEveryNode('SCRIPT', 'FLUSH');
      for (const name of namesOnEveryNode(`flushed-${family}`, 'rate')) {
        const l = new RedisRateLimiter(a.client, { name, rate: 1, interval: 60_000, timeout: 2_000 });
        const failures: unknown[] = [];
        l.on('storeError', ({ error }) => failures.push(error));
        expect(await l.execute(ok)).toBe('ran');
        expect(await settle(l.execute(ok))).toMatchObject({ error: expect.any(RateLimitedError) });
        expect(failures).toEqual([]);
      }
    } finally {
      await a.quit();
      await b.quit();
    }
  }, 30_000);
});
