/**
 * The proof with many processes: 8 Node processes share one limit of R per second for 10 s
 * through one redis-server. Every process counts what it was granted, with the server's time of
 * each permit (returned by the script). Assertions are about the limit, not speed. Then the same
 * with a lease of 20 permits per round trip, whose bound is 8 × 19 permits more or fewer.
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
  trips: number;
  storeUp: boolean;
}

/** Runs the fleet for `seconds`, each process with a lease of `leaseSize`; every report. */
async function fleet(name: string, seconds: number, leaseSize: number, family: string): Promise<Report[]> {
  const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const children = Array.from({ length: PROCESSES }, () =>
    fork(worker, [String(server.port), name, String(R), String(seconds * 1_000), String(leaseSize), family], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
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
  return Promise.all(reports);
}

/** The most permits whose times (µs) fall within one second, sliding. */
function busiest(times: number[]): number {
  let most = 0;
  for (let start = 0, end = 0; end < times.length; end++) {
    while ((times[end] as number) - (times[start] as number) >= 1e6) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

describe.each(['ioredis', 'node-redis'])('RedisRateLimiter across 8 processes, with %s', (family) => {
  it(`holds a shared ${R}/s within 1 % of R × ${SECONDS} (+ burst), and no 1 s window above R + burst`, async () => {
    const all = await fleet(`proof-${family}`, SECONDS, 1, family);
    const times = all.flatMap((report) => report.granted).sort((a, b) => a - b);
    expect(all.every((report) => report.failed === 0 && report.storeUp)).toBe(true);
    expect(all.every((report) => report.granted.length > 0)).toBe(true); // each process took part
    // The span the permits were granted over, on the server's clock, in seconds.
    const span = ((times.at(-1) as number) - (times[0] as number)) / 1e6;
    const allowed = R * span + R; // rate × time + the burst of a full bucket
    expect(times.length).toBeLessThanOrEqual(Math.ceil(allowed) + 1);
    expect(times.length).toBeGreaterThanOrEqual(Math.floor(allowed * 0.99));
    // No window of one second (sliding, on the server's clock) holds more than R + burst.
    const most = busiest(times);
    expect(most).toBeLessThanOrEqual(2 * R);
    console.log(`${family}: ${PROCESSES} processes, ${span.toFixed(2)} s: ${times.length} granted (allowed ${allowed.toFixed(0)}), busiest 1 s window ${most}, refused ${all.reduce((n, r) => n + r.refused, 0)}`);
  }, 60_000);

  it(`with leaseSize 20: within 8 × 19 permits of what the bucket allows, each process making a round trip for a fraction of its calls`, async () => {
    const seconds = 5;
    const spare = PROCESSES * 19;
    const all = await fleet(`proof-lease-${family}`, seconds, 20, family);
    // The start of each call, on the host's clock (µs): a spare permit's call starts after the round trip that took it.
    const times = all.flatMap((report) => report.granted).sort((a, b) => a - b);
    expect(all.every((report) => report.failed === 0 && report.storeUp)).toBe(true);
    expect(all.every((report) => report.granted.length > 0)).toBe(true);
    const span = ((times.at(-1) as number) - (times[0] as number)) / 1e6;
    const allowed = R * span + R;
    expect(times.length).toBeLessThanOrEqual(Math.ceil(allowed) + spare);
    expect(times.length).toBeGreaterThanOrEqual(Math.floor(allowed * 0.99) - spare);
    const most = busiest(times);
    expect(most).toBeLessThanOrEqual(2 * R + spare);
    // A refused call mostly needs no round trip either: the replica knows the bucket is empty until its next permit.
    const calls = all.reduce((n, r) => n + r.granted.length + r.refused, 0);
    const trips = all.reduce((n, r) => n + r.trips, 0);
    expect(trips).toBeLessThan(calls / 2);
    console.log(`${family}: ${PROCESSES} processes, leaseSize 20, ${span.toFixed(2)} s: ${times.length} granted (allowed ${allowed.toFixed(0)} ± ${spare}), busiest 1 s window ${most}, ${calls} calls, ${trips} round trips`);
  }, 60_000);
});
