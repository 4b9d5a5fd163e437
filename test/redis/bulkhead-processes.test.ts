/**
 * The fleet-wide bulkhead across processes: 4 Node processes share a cap of N through one
 * redis-server and never run more than N calls at once (by the server's clock); a process
 * killed with SIGKILL while holding slots gives them back when its leases expire.
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

function start(args: string[]): ChildProcess {
  return fork(worker, [String(server.port), ...args], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

describe('RedisBulkhead across processes', () => {
  it('4 processes sharing a cap of 3 never run more than 3 calls at once (server time)', async () => {
    const N = 3;
    const children = Array.from({ length: 4 }, () => start(['cap', String(N), 'run', '3000']));
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
    console.log(`4 processes, cap ${N}: ${edges.length / 2} calls, at most ${most} at once`);
  }, 60_000);

  it('a process killed with SIGKILL while holding slots gives them back when its leases expire (not before)', async () => {
    const client = new IORedis({ port: server.port, host: '127.0.0.1' });
    try {
      const bulkhead = new RedisBulkhead(client, { name: 'killed', maxConcurrent: 2, leaseTime: 1_500, timeout: 2_000 });
      const child = start(['killed', '2', 'hold', '2']);
      const held = next(child);
      await ready(child);
      child.send('go');
      expect(await held).toBe('held');
      // Renewed while the holder lives: still full after more than one lease time.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await expect(bulkhead.execute(() => 'ran')).rejects.toBeInstanceOf(BulkheadRejectedError);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      await expect(bulkhead.execute(() => 'ran')).rejects.toMatchObject({ reason: 'full' });
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
    } finally {
      client.disconnect();
    }
  }, 30_000);
});
