/**
 * The shared breaker across 8 Node processes (breaker-worker.ts), each a replica of one
 * RedisCircuitBreaker on one redis-server, with ioredis and with node-redis, with pushes (a
 * subscriber connection each) and without (each process learns changes from its own reports).
 *
 * The dependency goes down; each process fails at most 2 of its calls (then withdraws them), so
 * the threshold of 8 is reached only by the failures of 4 processes or more together. Proved:
 * the shared breaker opens, every process hears of it and refuses calls; the fleet sends the
 * dependency at most halfOpenMaxCalls trials in the first half-open period (they fail: it opens
 * again); once the dependency is back a trial closes it for every process. The server's own
 * account of the changes comes from a subscription of the test's to the breaker's channel. The
 * delays (the server's opening to each process's stateChange and first refusal) are printed;
 * they are asserted only loosely (under 1 s, before the break ends), to catch a replica that
 * never heard. Processes and Redis share one host, so their clocks are one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from './server.js';

// As in breaker-worker.ts.
const PROCESSES = 8;
const THRESHOLD = 8;
const CAP = 2;
const HALF_OPEN_MAX_CALLS = 2;

const worker = fileURLToPath(new URL('./breaker-worker.ts', import.meta.url));
let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  await server?.close();
});

interface Counts {
  failures: number;
  withdrawn: number;
  refused: number;
  trialsFailed: number;
  trialsSucceeded: number;
  ranAfterClose: number;
  other: number;
  storeErrors: number;
}
interface Report {
  reached: number[];
  counts: Counts;
  changes: string[];
  storeUp: boolean;
  state: string;
  storeErrors: string[];
}
/** A change as the script published it: `gen state retryAt reason co openedAt` (server times). */
interface Published {
  state: string;
  retryAt: number;
  reason: string;
  openedAt: number;
}

/** A forked replica (one for every scenario of the file) and the messages it sent, by type. */
class Replica {
  readonly child: ChildProcess;
  private waiting = new Map<string, { promise: Promise<any>; resolve: (value: any) => void; reject: (error: Error) => void }>();
  private exited: Error | undefined;

  constructor() {
    this.child = fork(worker, [String(server.port)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (message: any) => this.slot(typeof message === 'string' ? message : message.type).resolve(message));
    this.child.once('exit', (code) => {
      this.exited = new Error(`a replica exited with ${code} before it said everything`);
      for (const slot of this.waiting.values()) slot.reject(this.exited);
    });
  }

  /** Starts a scenario: the messages of the last one are forgotten. */
  setup(family: string, name: string, mode: string): void {
    this.waiting = new Map();
    this.child.send({ type: 'setup', family, name, mode });
  }

  private slot(type: string) {
    let slot = this.waiting.get(type);
    if (slot === undefined) {
      let resolve!: (value: any) => void;
      let reject!: (error: Error) => void;
      const promise = new Promise((ok, fail) => ((resolve = ok), (reject = fail)));
      promise.catch(() => {});
      slot = { promise, resolve, reject };
      this.waiting.set(type, slot);
      if (this.exited !== undefined) reject(this.exited);
    }
    return slot;
  }

  said<T>(type: string): Promise<T> {
    return this.slot(type).promise;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

let fleet: Replica[] | undefined;

/** The 8 processes, forked once for the file (again after a scenario that failed). */
async function replicas(): Promise<Replica[]> {
  if (fleet === undefined) {
    fleet = Array.from({ length: PROCESSES }, () => new Replica());
    await all(fleet, 'started', 30_000);
  }
  return fleet;
}

afterAll(() => {
  for (const r of fleet ?? []) r.kill();
});

/** Every replica's message of `type`, or an error naming how many said it within `ms`. */
async function all<T>(replicas: Replica[], type: string, ms = 15_000): Promise<T[]> {
  let said = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const answers = Promise.all(replicas.map((r) => r.said<T>(type).then((value) => (said++, value))));
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`only ${said} of ${replicas.length} replicas said '${type}' within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([answers, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The fleet, each process set up for a scenario: a replica of the breaker `name` of `family`, in `mode`. */
async function fleetFor(family: string, name: string, mode: string): Promise<Replica[]> {
  const fleet = await replicas();
  for (const r of fleet) r.setup(family, name, mode);
  await all(fleet, 'ready');
  return fleet;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
};

describe.each(['ioredis', 'node-redis'] as const)('RedisCircuitBreaker across 8 processes with %s', (family) => {
  it.each(['push', 'poll'] as const)(
    '%s: failures spread over the fleet open it for every process; the first half-open period sends at most halfOpenMaxCalls trials; a trial closes it for all',
    async (mode) => {
      const name = `fleet-${family}-${mode}`;
      const channel = `{bulwark:${name}}:breaker`;
      const observer = new IORedis({ port: server.port, host: '127.0.0.1' });
      const published: Published[] = [];
      observer.on('message', (_channel: string, text: string) => {
        const [, state, retryAt, reason, , openedAt] = text.split(' ');
        published.push({ state: state as string, retryAt: Number(retryAt), reason: reason as string, openedAt: Number(openedAt) });
      });
      await observer.subscribe(channel);
      const replicas = await fleetFor(family, name, mode);
      let passed = false;
      try {
        for (const r of replicas) r.child.send('go');
        await sleep(300);
        for (const r of replicas) r.child.send('down');
        const opened = await all<{ heardAt: number; refusedAt: number }>(replicas, 'opened');
        await all(replicas, 'reopened');
        for (const r of replicas) r.child.send('up');
        await all(replicas, 'closed');
        await sleep(100);
        for (const r of replicas) r.child.send('stop');
        const reports = await all<Report>(replicas, 'report');

        // Nothing failed but the dependency; Redis answered every replica throughout.
        expect(reports.flatMap((report) => report.storeErrors)).toEqual([]);
        for (const report of reports) expect(report.counts).toMatchObject({ other: 0, storeErrors: 0 });
        expect(reports.every((report) => report.storeUp)).toBe(true);

        // The server's account: opened by the threshold, a failed trial, a successful one.
        const [opening, halfOpen, reopening] = published;
        expect(opening).toMatchObject({ state: 'open', reason: 'failure-threshold' });
        expect(halfOpen).toMatchObject({ state: 'half-open', reason: 'recovery-timeout' });
        expect(reopening).toMatchObject({ state: 'open', reason: 'trial-failure' });
        expect(published.at(-1)).toMatchObject({ state: 'closed', reason: 'trial-success' });
        const openedAt = (opening as Published).openedAt;

        // No process alone could open it: at most CAP failures each, from enough processes to reach the threshold.
        const failures = reports.map((report) => report.counts.failures);
        expect(Math.max(...failures)).toBeLessThanOrEqual(CAP);
        expect(failures.filter((n) => n > 0).length).toBeGreaterThanOrEqual(Math.ceil(THRESHOLD / CAP));

        // Every process heard of the opening and refused calls, before the break ended.
        const heard = opened.map(({ heardAt }) => heardAt - openedAt);
        const refused = opened.map(({ refusedAt }) => refusedAt - openedAt);
        for (const delay of [...heard, ...refused]) {
          expect(delay).toBeGreaterThanOrEqual(-1);
          expect(delay).toBeLessThan(1_000);
        }
        expect(reports.every((report) => report.counts.refused > 0)).toBe(true);

        // The first half-open period, from its start to the start of the next: the fleet's trials.
        const reached = reports.flatMap((report) => report.reached);
        const firstPeriod = reached.filter((at) => at >= (opening as Published).retryAt && at < (reopening as Published).retryAt);
        expect(firstPeriod.length).toBeGreaterThanOrEqual(1);
        expect(firstPeriod.length).toBeLessThanOrEqual(HALF_OPEN_MAX_CALLS);
        // Calls admitted before their process heard of the opening (reaching the dependency after it).
        const late = reached.filter((at) => at >= openedAt && at < (opening as Published).retryAt).length;
        const secondPeriod = reached.filter((at) => at >= (reopening as Published).retryAt).length;

        // Closed again for every process: their calls run.
        for (const report of reports) {
          expect(report.state).toBe('closed');
          expect(report.counts.ranAfterClose).toBeGreaterThan(0);
          expect(report.changes.at(-1)).toBe('half-open→closed trial-success');
        }
        const ms = (values: number[]) => `max ${Math.max(...values)} ms, median ${median(values)} ms`;
        console.log(
          `${family} ${mode}, ${PROCESSES} processes: opened by the failures of ${failures.filter((n) => n > 0).length} processes (${failures.join(' ')}); ` +
            `heard (stateChange) ${ms(heard)}; first refusal ${ms(refused)}; calls reaching the dependency after the opening before their process heard: ${late}; ` +
            `trials in the first half-open period: ${firstPeriod.length} (halfOpenMaxCalls ${HALF_OPEN_MAX_CALLS}), from the next on: ${secondPeriod}; ` +
            `changes published: ${published.map((p) => `${p.state} ${p.reason}`).join(', ')}`,
        );
        console.log(`${family} ${mode} heard: ${heard.join(' ')} ms; refused: ${refused.join(' ')} ms`);
        passed = true;
      } finally {
        if (!passed) {
          for (const r of replicas) r.kill();
          fleet = undefined;
        }
        observer.disconnect();
      }
    },
    60_000,
  );
});
