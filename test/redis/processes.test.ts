/**
 * The proof with many processes: 8 Node processes share one limit of R per second for 10 s
 * through one redis-server. Every process counts what it was granted, with the server's time of
 * each permit (returned by the script). Assertions are about the limit, not speed.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from './server.js';

const R = 200;
const SECONDS = 10;
const PROCESSES = 8;
let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  await server?.close();
});

interface Report {
  granted: number[];
  refused: number;
  failed: number;
  storeUp: boolean;
}

describe('RedisRateLimiter across 8 processes', () => {
  it(`holds a shared ${R}/s within 1 % of R × ${SECONDS} (+ burst), and no 1 s window above R + burst`, async () => {
    const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
    const children = Array.from({ length: PROCESSES }, () =>
      fork(worker, [String(server.port), 'proof', String(R), String(SECONDS * 1_000)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    const reports = children.map(
      (child) =>
        new Promise<Report>((resolve, reject) => {
          child.once('error', reject);
          child.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)));
          child.on('message', (message) => {
            if (message !== 'ready') resolve(message as Report);
          });
        }),
    );
    await Promise.all(children.map((child) => new Promise<void>((resolve) => child.once('message', () => resolve()))));
    for (const child of children) child.send('go');
    const all = await Promise.all(reports);
    const times = all.flatMap((report) => report.granted).sort((a, b) => a - b);
    expect(all.every((report) => report.failed === 0 && report.storeUp)).toBe(true);
    expect(all.every((report) => report.granted.length > 0)).toBe(true); // each process took part
    // The span the permits were granted over, on the server's clock, in seconds.
    const span = ((times.at(-1) as number) - (times[0] as number)) / 1e6;
    const allowed = R * span + R; // rate × time + the burst of a full bucket
    expect(times.length).toBeLessThanOrEqual(Math.ceil(allowed) + 1);
    expect(times.length).toBeGreaterThanOrEqual(Math.floor(allowed * 0.99));
    // No window of one second (sliding, on the server's clock) holds more than R + burst.
    let most = 0;
    for (let start = 0, end = 0; end < times.length; end++) {
      while ((times[end] as number) - (times[start] as number) >= 1e6) start++;
      most = Math.max(most, end - start + 1);
    }
    expect(most).toBeLessThanOrEqual(2 * R);
    console.log(`${PROCESSES} processes, ${span.toFixed(2)} s: ${times.length} granted (allowed ${allowed.toFixed(0)}), busiest 1 s window ${most}, refused ${all.reduce((n, r) => n + r.refused, 0)}`);
  }, 60_000);
});
