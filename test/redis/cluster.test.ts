/**
 * bulwark/redis on a local Redis Cluster of three masters, with ioredis's `Cluster` and
 * node-redis's `createCluster`: every script touches one slot (no CROSSSLOT), and a NOSCRIPT
 * (a node that never saw the script, or flushed it) is answered on the node owning the key.
 * The shared breaker's changes reach its replicas by classic pub/sub, which a cluster delivers
 * on every node: its subscriber may be a cluster client or a plain connection to any one node.
 */
import { Cluster, Redis as IORedis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError, RateLimitedError } from '../../src/index.js';
import { RedisCircuitBreaker, RedisRateLimiter } from '../../src/redis/index.js';
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

type SubscriberKind = 'a cluster client' | 'a connection to one node';

/** A connection for a breaker's `subscriber`: a cluster client, or a plain client of the first node (which owns at most one of the names). */
async function subscriberOf(family: 'ioredis' | 'node-redis', kind: SubscriberKind): Promise<ClusterClient> {
  if (kind === 'a cluster client') return connect(family);
  const port = cluster.ports[0] as number;
  if (family === 'ioredis') {
    const client = new IORedis({ port, host: '127.0.0.1', lazyConnect: true });
    client.on('error', () => {});
    await client.connect();
    return { client: client as never, quit: async () => void client.disconnect() };
  }
  const client = createClient({ url: `redis://127.0.0.1:${port}` });
  client.on('error', () => {});
  await client.connect();
  return { client: client as never, quit: async () => void (await client.disconnect().catch(() => {})) };
}

describe.each(['ioredis', 'node-redis'] as const)('RedisCircuitBreaker on a 3-master Redis Cluster with %s', (family) => {
  it.each<SubscriberKind>(['a cluster client', 'a connection to one node'])(
    'two replicas with %s as subscriber share the breaker on whichever node owns it: a change on one reaches the other by push; SCRIPT FLUSH on every node breaks nothing',
    async (kind) => {
      const opened: ClusterClient[] = [];
      const open = async (make: () => Promise<ClusterClient>) => {
        const c = await make();
        opened.push(c);
        return c;
      };
      try {
        const names = namesOnEveryNode(`breaker-${family}-${kind === 'a cluster client' ? 'cluster' : 'node'}`, 'breaker');
        expect(names).toHaveLength(3);
        for (const name of names) {
          // Its state and its trial leases in one slot: the script's two keys never CROSSSLOT.
          const [state, trials] = [`{bulwark:${name}}:breaker`, `{bulwark:${name}}:trials`];
          expect(cluster.slotOf(state)).toBe(cluster.slotOf(trials));
          const options = { name, failureThreshold: 2, recoveryTimeout: 100, halfOpenMaxCalls: 1, syncInterval: 20, timeout: 2_000 };
          const [a, b] = await Promise.all(
            [0, 1].map(async () => new RedisCircuitBreaker((await open(() => connect(family))).client, { ...options, subscriber: (await open(() => subscriberOf(family, kind))).client })),
          );
          const [ra, rb] = [a as RedisCircuitBreaker, b as RedisCircuitBreaker];
          const failures: unknown[] = [];
          for (const r of [ra, rb]) r.on('storeError', ({ error }) => failures.push(error));
          expect(ra.key).toBe(state);
          await ra.execute(ok);
          await rb.execute(ok);
          // B learns every change below by push alone: it makes no call until it is asked to refuse one.
          // First, until its subscription is live: A isolates and resets until B has heard an isolation.
          await vi.waitFor(
            async () => {
              await ra.reset();
              await ra.isolate();
              await vi.waitFor(() => expect(rb.state).toBe('isolated'), { timeout: 200, interval: 5 });
            },
            { timeout: 10_000, interval: 10 },
          );
          await ra.reset();
          await vi.waitFor(() => expect(rb.state).toBe('closed'), { timeout: 2_000, interval: 2 });
          // Failures on A open it; B refuses at once.
          for (let i = 0; i < 2; i++) await settle(ra.execute(() => Promise.reject(new Error('down'))));
          await vi.waitFor(() => expect(rb.state).toBe('open'), { timeout: 2_000, interval: 2 });
          const refused = (await settle(rb.execute(ok))) as { error: CircuitOpenError };
          expect(refused.error).toBeInstanceOf(CircuitOpenError);
          expect(refused.error.state).toBe('open');
          // After the break, B's trial (a lease in the trials key) closes it; A hears by push.
          await new Promise((resolve) => setTimeout(resolve, 120));
          expect(await rb.execute(ok)).toBe('ran');
          await vi.waitFor(() => expect(ra.state).toBe('closed'), { timeout: 2_000, interval: 2 });
          expect(failures).toEqual([]);
          expect(ra.storeUp && rb.storeUp).toBe(true);
          await Promise.all([ra.close(), rb.close()]);
        }
        // A node that lost the script answers NOSCRIPT: the script is sent again, the breaker goes on.
        cluster.onEveryNode('SCRIPT', 'FLUSH');
        for (const name of names) {
          const options = { name, failureThreshold: 1, recoveryTimeout: 60_000, syncInterval: 20, timeout: 2_000 };
          const a = new RedisCircuitBreaker((await open(() => connect(family))).client, { ...options, subscriber: (await open(() => subscriberOf(family, kind))).client });
          const b = new RedisCircuitBreaker((await open(() => connect(family))).client, { ...options, subscriber: (await open(() => subscriberOf(family, kind))).client });
          const failures: unknown[] = [];
          for (const r of [a, b]) r.on('storeError', ({ error }) => failures.push(error));
          await a.execute(ok);
          await b.execute(ok);
          await settle(a.execute(() => Promise.reject(new Error('down'))));
          await vi.waitFor(() => expect(a.state).toBe('open'), { timeout: 2_000, interval: 2 });
          // B hears it by push, or reads it with its next call: either way it refuses.
          await vi.waitFor(async () => expect(await settle(b.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) }), { timeout: 2_000, interval: 20 });
          await b.reset();
          await vi.waitFor(() => expect(a.state).toBe('closed'), { timeout: 2_000, interval: 2 });
          expect(await a.execute(ok)).toBe('ran');
          expect(failures).toEqual([]);
          await Promise.all([a.close(), b.close()]);
        }
      } finally {
        await Promise.all(opened.map((c) => c.quit()));
      }
    },
    60_000,
  );
});
