/**
 * The fleet-wide bulkhead across processes, with ioredis and with node-redis: 8 Node processes
 * share a cap of N through one redis-server and never run more than N calls at once (by the
 * server's clock); a process killed with SIGKILL while holding slots gives them back when its
 * leases expire (one holder of each family, killed together).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulkheadRejectedError } from '../../src/index.js';
import { RedisBulkhead } from '../../src/redis/index.js';
import { RedisServer } from './server.js';

const worker = fileURLToPath(new URL('./bulkhead-worker.ts', import.meta.url));
let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  await server?.close();
});

type Family = 'ioredis' | 'node-redis';
const FAMILIES: readonly Family[] = ['ioredis', 'node-redis'];

function start(family: Family, args: string[]): ChildProcess {
  return fork(worker, [String(server.port), family, ...args], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function next(child: ChildProcess, skip = 'ready'): Promise<unknown> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    const onMessage = (message: unknown) => {
      if (message === skip) return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
  });
}

const ready = (child: ChildProcess) => new Promise<void>((resolve) => child.once('message', () => resolve()));

describe.each(FAMILIES)('RedisBulkhead across processes with %s', (family) => {
  it('8 processes sharing a cap of 3 never run more than 3 calls at once (server time)', async () => {
    const N = 3;
    const children = Array.from({ length: 8 }, () => start(family, [`cap-${family}`, String(N), 'run', '2000']));
    const reports = children.map((child) => next(child) as Promise<{ intervals: [number, number][]; failed: number; storeUp: boolean }>);
    await Promise.all(children.map(ready));
    for (const child of children) child.send('go');
    const all = await Promise.all(reports);
    expect(all.every((report) => report.failed === 0 && report.storeUp && report.intervals.length > 0)).toBe(true);
    const edges = all.flatMap((report) => report.intervals.flatMap(([from, to]) => [[from, 1], [to, -1]] as const));
    edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // at one instant, an end before a start
    let now = 0;
    let most = 0;
    for (const [, step] of edges) most = Math.max(most, (now += step));
    expect(most).toBeLessThanOrEqual(N);
    expect(most).toBe(N); // the cap was reached: the test had contention
    console.log(`${family}, 8 processes, cap ${N}: ${edges.length / 2} calls, at most ${most} at once`);
  }, 60_000);
});

describe('RedisBulkhead across processes', () => {
  it('a process killed with SIGKILL while holding slots gives them back when its leases expire (not before): one holder of each family', async () => {
    const client = new IORedis({ port: server.port, host: '127.0.0.1' });
    try {
      const bulkheads = FAMILIES.map((family) => new RedisBulkhead(client, { name: `killed-${family}`, maxConcurrent: 2, leaseTime: 1_500, timeout: 2_000 }));
      const children = FAMILIES.map((family) => start(family, [`killed-${family}`, '2', 'hold', '2']));
      const held = children.map((child) => next(child));
      await Promise.all(children.map(ready));
      for (const child of children) child.send('go');
      expect(await Promise.all(held)).toEqual(['held', 'held']);
      // Renewed while the holders live: still full after more than one lease time.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      for (const bulkhead of bulkheads) await expect(bulkhead.execute(() => 'ran')).rejects.toBeInstanceOf(BulkheadRejectedError);
      await Promise.all(
        children.map((child) => {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          return exited;
        }),
      );
      const killedAt = Date.now();
      for (const bulkhead of bulkheads) await expect(bulkhead.execute(() => 'ran')).rejects.toMatchObject({ reason: 'full' });
      await Promise.all(
        bulkheads.map(async (bulkhead) => {
          let freed = false;
          // Given back once the leases expire; the bound only ends a test whose leases never do.
          while (!freed && Date.now() - killedAt < 15_000) {
            freed = await bulkhead.execute(() => true).catch(() => false);
            if (!freed) await new Promise((resolve) => setTimeout(resolve, 25));
          }
          expect(freed).toBe(true);
          // Both of the dead process's slots are free (a lease goes back one round trip after its call).
          for (let i = 0; i < 40 && (await client.zcard(bulkhead.key)) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
          expect(await Promise.all([bulkhead.execute(() => 1), bulkhead.execute(() => 2)])).toEqual([1, 2]);
        }),
      );
    } finally {
      client.disconnect();
    }
  }, 30_000);
});
