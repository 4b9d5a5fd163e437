/**
 * The README says the core uses no `node:` module, "so Deno, Bun, browsers and edge runtimes
 * work too", and docs/health.md shows `fetchHealthHandler` behind `Bun.serve` and `Deno.serve`. This suite
 * proves it: one smoke scenario (test/fixtures/runtimes/smoke.mjs) and one health app
 * (test/fixtures/runtimes/app.mjs) run in Bun, Deno, Cloudflare's workerd and headless
 * Chromium, each loading the ESM build the way a user would, from the packed tarball:
 *
 * - Bun and Deno run a script in a fresh project whose node_modules/bulwark is the tarball,
 *   and resolve `bulwark` through the package's exports map (Deno with `nodeModulesDir:
 *   "manual"`, `--cached-only` and an empty DENO_DIR, so it cannot reach a registry);
 * - workerd serves a worker bundled from that project by esbuild, as wrangler would;
 * - Chromium loads node_modules/bulwark/dist over HTTP with an import map.
 *
 * Bun, Deno and workerd serve the app on 127.0.0.1 and the test talks HTTP to them; in
 * Chromium there is no server, so the page calls the handler with `new Request(...)`. Every
 * runtime gets the same exact expectations.
 * The runtimes are dev dependencies (`npm ci` installs them); Chromium comes from the system.
 * Needs `dist/` built (`npx tsup`; `npm test` builds before vitest runs).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect as globalExpect, it } from 'vitest';
import { installPacked, root } from './fixtures/packed.js';

type Expect = typeof globalExpect;
type Runtime = 'bun' | 'deno' | 'workerd' | 'chromium';

const FIXTURES = join(root, 'test', 'fixtures', 'runtimes');
/** Per test: start, smoke, the health walk-through, stop. Each runtime takes well under 5 s. */
const TEST_TIMEOUT = 30_000;
/** How long a runtime may take to start listening, or Chromium to load the page. */
const START_TIMEOUT = 15_000;
/** workerd 1.20261123 refuses a compatibility date after 2026-11-30 (its newest) or in the future. */
const WORKERD_COMPATIBILITY_DATE = '2026-11-01';

// ---------------------------------------------------------------------------------------------
// What every runtime must answer.

/** The smoke scenario's summary (smoke.mjs), `timings` left out. */
const EXPECTED_SMOKE = {
  stack: {
    recovered: 'ok@2',
    attempts: [
      { attempt: 1, aborted: false, active: 1 },
      { attempt: 2, aborted: false, active: 1 },
    ],
    recoveredWaited: true,
    recoveredRetries: [{ attempt: 1, delay: 5 }],
    afterRecovery: { state: 'closed', consecutiveFailures: 0 },
    fellBack: 'fallback:down',
    downAttempts: [1, 2, 3],
    downRetries: [
      { attempt: 1, delay: 5 },
      { attempt: 2, delay: 10 },
    ],
    fallbacks: ['down'],
    breaker: { state: 'closed', consecutiveFailures: 1 },
    bulkhead: { active: 0, queued: 0 },
  },
  timeout: {
    isTimeoutError: true,
    isResilienceError: true,
    instanceOfTimeoutError: true,
    name: 'TimeoutError',
    timeout: 20,
    message: 'Operation timed out after 20 ms',
    signalAborted: true,
    reasonIsTheError: true,
    events: [20],
    notEarly: true,
    notLate: true,
    domTimeoutErrorPasses: false,
  },
  abort: {
    rejectedWithTheReason: true,
    activeWhileRunning: 1,
    innerSignalAborted: true,
    innerReasonIsTheReason: true,
    attempts: [1],
    fallbacks: [],
    breaker: { state: 'closed', consecutiveFailures: 0 },
    bulkheadActiveAfter: 0,
    alreadyAborted: 'rejected with the reason',
  },
  breaker: {
    failures: ['boom0', 'boom1'],
    stateAfterFailures: 'open',
    refused: {
      isCircuitOpenError: true,
      instanceOf: true,
      isTimeoutError: false,
      name: 'CircuitOpenError',
      state: 'open',
      retryAfterInRange: true,
      // docs/errors-and-events.md: a refusal's `stack` is the name and the message.
      stack: 'name: message',
      ran: false,
    },
    openedAtIsEpochMs: true,
    stateAfterWait: 'half-open',
    trial: 'trial',
    stateAfterTrial: 'closed',
    changes: ['closed>open:failure-threshold', 'open>half-open:recovery-timeout', 'half-open>closed:trial-success'],
  },
  bulkhead: {
    counts: { active: 1, queued: 1 },
    full: {
      isBulkheadRejectedError: true,
      instanceOf: true,
      name: 'BulkheadRejectedError',
      reason: 'full',
      maxConcurrent: 1,
      maxQueue: 1,
      stack: 'name: message',
    },
    results: ['first', 'second'],
    queueTimeout: { isBulkheadRejectedError: true, reason: 'queue-timeout' },
    rejections: ['full'],
    after: { active: 0, queued: 0, timedActive: 0, timedQueued: 0 },
  },
  underOneSecond: true,
};

const JSON_TYPE = 'application/json; charset=utf-8';
const PROBE_HEADERS = { 'content-type': JSON_TYPE, 'cache-control': 'no-store', vary: 'Accept' };
const PASS = { status: 'pass', durationMs: 'ms' };
const FAIL = { status: 'fail', durationMs: 'ms' };
const HEALTH_JSON_FAIL = [{ status: 'fail', observedValue: 'ms', observedUnit: 'ms', time: 'date' }];

/** The health walk-through (`walkHealth`): what each step answers. */
const EXPECTED_HEALTH = {
  live: { status: 200, headers: PROBE_HEADERS, body: { alive: true } },
  readyWhileStarting: { status: 503, headers: PROBE_HEADERS, body: { ready: false, reason: 'starting', checks: {} } },
  headReadyWhileStarting: { status: 503, headers: PROBE_HEADERS, body: '' },
  // The critical check passes, the non-critical one fails (its error text holds a password: not shown).
  health: { status: 200, headers: PROBE_HEADERS, body: { status: 'degraded', checks: { dependency: PASS, cache: FAIL } } },
  headHealth: { status: 200, headers: PROBE_HEADERS, body: '' },
  postHealth: { status: 405, headers: { ...PROBE_HEADERS, allow: 'GET, HEAD' }, body: { error: 'method not allowed' } },
  markReady: { status: 204, body: '' },
  ready: { status: 200, headers: PROBE_HEADERS, body: { ready: true, checks: { dependency: PASS } } },
  // /health and /ready probed at the same moment share one run of the critical check.
  runsOfSharedProbes: 1,
  dependencyDown: { status: 204, body: '' },
  unhealthy: { status: 503, headers: PROBE_HEADERS, body: { status: 'unhealthy', checks: { dependency: FAIL, cache: FAIL } } },
  notReady: { status: 503, headers: PROBE_HEADERS, body: { ready: false, reason: 'unhealthy', checks: { dependency: FAIL } } },
  healthJson: {
    status: 503,
    headers: { ...PROBE_HEADERS, 'content-type': 'application/health+json' },
    body: { status: 'fail', checks: { dependency: HEALTH_JSON_FAIL, cache: HEALTH_JSON_FAIL } },
  },
  liveWithQueryAndSlash: { status: 200, headers: PROBE_HEADERS, body: { alive: true } },
  otherPath: { status: 404, body: 'not found' },
};

/** Over HTTP only (not in Chromium, which calls the handler): HEAD's Content-Length. */
const HEAD_LENGTH_OK = 'absent, or as GET';


// ---------------------------------------------------------------------------------------------
// Talking to the app: over HTTP, or through the page in Chromium.

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}
type Send = (method: string, path: string, headers?: Record<string, string>) => Promise<Answer>;

function httpSend(base: string): Send {
  return async (method, path, headers) => {
    const response = await fetch(new URL(path, base), { method, headers: headers ?? {}, signal: AbortSignal.timeout(5_000) });
    return { status: response.status, headers: headersOf(response), body: await response.text() };
  };
}

function headersOf(response: Response): Record<string, string> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return headers;
}

const SHOWN_HEADERS = ['content-type', 'cache-control', 'vary', 'allow'];

/** Status, the headers the health handler sets, and the body with durations and dates made stable. */
function shape(answer: Answer, headers = true): Record<string, unknown> {
  let body: unknown = answer.body;
  try {
    body = JSON.parse(answer.body, (key, value: unknown) => {
      if ((key === 'durationMs' || key === 'observedValue') && typeof value === 'number' && value >= 0) return 'ms';
      if (key === 'time' && typeof value === 'string' && !Number.isNaN(Date.parse(value))) return 'date';
      return value;
    });
  } catch {
    // not JSON: kept as text
  }
  if (!headers) return { status: answer.status, body };
  const shown = Object.fromEntries(SHOWN_HEADERS.filter((name) => answer.headers[name] !== undefined).map((name) => [name, answer.headers[name]]));
  return { status: answer.status, headers: shown, body };
}

/** Walks the health endpoints through starting, ready and a failing dependency; returns what each step answered. */
async function walkHealth(send: Send): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {};
  seen.live = shape(await send('GET', '/live'));
  seen.readyWhileStarting = shape(await send('GET', '/ready'));
  seen.headReadyWhileStarting = shape(await send('HEAD', '/ready'));
  seen.health = shape(await send('GET', '/health'));
  seen.headHealth = shape(await send('HEAD', '/health'));
  seen.postHealth = shape(await send('POST', '/health'));
  seen.markReady = shape(await send('POST', '/control/ready'), false);
  seen.ready = shape(await send('GET', '/ready'));
  // A check slow enough (150 ms) that both probes arrive while it runs.
  await send('POST', '/control/dependency?up=true&delay=150');
  const runsBefore = (JSON.parse((await send('GET', '/control/runs')).body) as { runs: number }).runs;
  await Promise.all([send('GET', '/health'), send('GET', '/ready')]);
  const runsAfter = (JSON.parse((await send('GET', '/control/runs')).body) as { runs: number }).runs;
  seen.runsOfSharedProbes = runsAfter - runsBefore;
  seen.dependencyDown = shape(await send('POST', '/control/dependency?up=false&delay=0'), false);
  seen.unhealthy = shape(await send('GET', '/health'));
  seen.notReady = shape(await send('GET', '/ready'));
  seen.healthJson = shape(await send('GET', '/health', { accept: 'application/health+json' }));
  seen.liveWithQueryAndSlash = shape(await send('GET', '/live/?probe=lb'));
  seen.otherPath = shape(await send('GET', '/elsewhere'), false);
  return seen;
}

/** HEAD's Content-Length on the wire, against GET's. */
async function headLength(send: Send): Promise<string> {
  const get = (await send('GET', '/live')).headers['content-length'];
  const head = (await send('HEAD', '/live')).headers['content-length'];
  return head === undefined || head === get ? HEAD_LENGTH_OK : `content-length ${head}, GET's ${get}`;
}

/** The smoke summary, `timings` dropped (they are shown on failure only). */
async function runSmoke(send: Send): Promise<{ summary: unknown; timings: unknown }> {
  const answer = await send('GET', '/smoke');
  if (answer.status !== 200) throw new Error(`GET /smoke answered ${answer.status}: ${answer.body}`);
  const { timings, ...summary } = JSON.parse(answer.body) as { timings: unknown };
  return { summary, timings };
}

/** The checks every runtime goes through, with the same expectations. */
async function checkRuntime(runtime: Runtime, send: Send, expect: Expect, overHttp: boolean): Promise<void> {
  const { summary, timings } = await runSmoke(send);
  expect(summary, `${runtime}: smoke summary (timings: ${JSON.stringify(timings)})`).toEqual(EXPECTED_SMOKE);
  expect(await walkHealth(send), `${runtime}: health endpoints`).toEqual(EXPECTED_HEALTH);
  if (overHttp) expect(await headLength(send), `${runtime}: HEAD's Content-Length`).toBe(HEAD_LENGTH_OK);
}

// ---------------------------------------------------------------------------------------------
// Runtimes: finding them, starting them, stopping them.

/** A runtime installed by `npm ci` as a dev dependency; fails with how to get it when missing. */
function devBinary(name: string, version: string): string {
  const path = join(root, 'node_modules', '.bin', name);
  if (!existsSync(path)) {
    throw new Error(`${name} not found at ${path}: it is a dev dependency (${name}@${version}), run \`npm ci\` (with install scripts: they put its platform binary in place)`);
  }
  return path;
}

function findChromium(): string {
  let found = '';
  try {
    found = execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  } catch {
    // not on PATH
  }
  if (found === '' && existsSync('/usr/bin/chromium')) found = '/usr/bin/chromium';
  if (found === '') {
    throw new Error('Chromium not found (`which chromium` found nothing, no /usr/bin/chromium): install it with `apt-get install -y --no-install-recommends chromium` (Debian), then run the suite again');
  }
  return found;
}

/** Every process this file started and has not stopped yet, killed in afterAll if a test failed first. */
const running = new Set<ChildProcess>();

/**
 * A variable for the environment of the processes of one runtime, inherited by theirs
 * (Chromium's zygotes, renderers and crash handler): how the test finds what is left of them.
 */
const MARKER_NAME = 'BULWARK_RUNTIMES_TEST';
function markerFor(name: string): string {
  return `${name}-${randomUUID()}`;
}

/** Processes still running (zombies aside) with the marker in their environment, read from /proc. */
function markedProcesses(marker: string): string[] {
  const variable = `${MARKER_NAME}=${marker}`;
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      // A zombie's environ reads empty: it has exited, and only waits for init to reap it.
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(variable)) continue;
      found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').slice(0, 160)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Waits (up to 2 s) until no process this file started is left; fails naming them if some are. */
async function noneLeft(name: string, marker: string): Promise<void> {
  let left: string[] = [];
  for (let i = 0; i < 80; i += 1) {
    left = markedProcesses(marker);
    if (left.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${name}: processes still running after the test stopped it:\n${left.join('\n')}`);
}

interface Started {
  url: string;
  stdout: () => string;
  stderr: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts a runtime in its own process group (a wrapper script could start the real binary as
 * a child: the whole group is killed). Resolves once `GET /live` answers: on `port`, or on
 * the port the runtime prints as `{"listening":port}`.
 */
async function startServer(name: string, command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; port?: number }): Promise<Started> {
  const marker = markerFor(name);
  const env = { ...(options.env ?? process.env), [MARKER_NAME]: marker };
  const child = spawn(command, args, { cwd: options.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  let spawnError: Error | undefined;
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.once('error', (error) => (spawnError = error));
  const exited = once(child, 'exit').catch(() => undefined); // rejects on 'error': the binary did not start
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      killGroup(child.pid);
      await exited;
    }
    running.delete(child);
    if (child.pid !== undefined) await groupGone(child.pid, name);
    await noneLeft(name, marker);
  };
  try {
    const deadline = Date.now() + START_TIMEOUT;
    let url: string | undefined;
    for (;;) {
      if (spawnError !== undefined) throw new Error(`did not start: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before it listened`);
      if (Date.now() > deadline) throw new Error(`not listening after ${START_TIMEOUT} ms`);
      const port = options.port ?? (/\{"listening":(\d+)\}/.exec(stdout)?.[1] as string | undefined);
      if (port !== undefined) {
        url ??= `http://127.0.0.1:${port}`;
        const live = await fetch(`${url}/live`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
        if (live?.status === 200) {
          await live.text();
          break;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return { url, stdout: () => stdout, stderr: () => stderr, stop };
  } catch (error) {
    await stop();
    throw new Error(`${name} (${command} ${args.join(' ')}) ${(error as Error).message}\nstdout: ${stdout}\nstderr: ${stderr}`);
  }
}

/** SIGKILL to the process group `pid` leads; nothing if it is gone already. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Waits until no process is left in the group `pid` led; fails if one is. */
async function groupGone(pid: number, name: string): Promise<void> {
  for (let i = 0; i < 40; i += 1) {
    try {
      process.kill(-pid, 0);
    } catch {
      return; // ESRCH: nothing left
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${name}: processes of group ${pid} still run after SIGKILL`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------

let project: { dir: string; remove: () => void } | undefined;
let dir = '';

beforeAll(async () => {
  for (const file of ['dist/index.js', 'dist/health.js']) {
    if (!existsSync(join(root, file))) throw new Error(`${file} is missing: run \`npx tsup\` first (\`npm test\` builds before vitest runs)`);
  }
  project = await installPacked();
  dir = project.dir;
  for (const file of ['smoke.mjs', 'app.mjs', 'bun.mjs', 'deno.mjs', 'worker.mjs']) copyFileSync(join(FIXTURES, file), join(dir, file));
  // Deno reads `bulwark` from package.json's dependencies and node_modules as it is.
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'bulwark-consumer', private: true, type: 'module', dependencies: { bulwark: '0.1.0' } }, null, 2)}\n`);
  writeFileSync(join(dir, 'deno.json'), `${JSON.stringify({ nodeModulesDir: 'manual' }, null, 2)}\n`);
  mkdirSync(join(dir, '.deno'));
}, 60_000);

afterAll(async () => {
  for (const child of running) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) killGroup(child.pid);
  }
  running.clear();
  project?.remove();
});

describe.concurrent('the packed ESM build in other runtimes', () => {
  it('Bun: the smoke scenario, and fetchHealthHandler behind Bun.serve', async ({ expect }) => {
    const bun = devBinary('bun', '^1.4.5');
    const server = await startServer('bun', bun, ['--no-install', 'bun.mjs'], { cwd: dir });
    try {
      const resolved = JSON.parse((await httpSend(server.url)('GET', '/resolved')).body) as unknown;
      expect(resolved).toEqual({
        bulwark: pathToFileURL(join(dir, 'node_modules/bulwark/dist/index.js')).href,
        health: pathToFileURL(join(dir, 'node_modules/bulwark/dist/health.js')).href,
      });
      await checkRuntime('bun', httpSend(server.url), expect, true);
    } finally {
      await server.stop();
    }
    expect(server.stderr()).toBe('');
  }, TEST_TIMEOUT);

  it('Deno: the smoke scenario, and fetchHealthHandler behind Deno.serve, offline with only --allow-net=127.0.0.1', async ({ expect }) => {
    const deno = devBinary('deno', '^2.9.6');
    const server = await startServer(
      'deno',
      deno,
      ['run', '--config', 'deno.json', '--cached-only', '--no-remote', '--no-lock', '--allow-net=127.0.0.1', 'deno.mjs'],
      // An empty DENO_DIR: no cached package can stand in for node_modules/bulwark.
      { cwd: dir, env: { ...process.env, DENO_DIR: join(dir, '.deno'), NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } },
    );
    try {
      const resolved = JSON.parse((await httpSend(server.url)('GET', '/resolved')).body) as unknown;
      expect(resolved).toEqual({
        bulwark: pathToFileURL(join(dir, 'node_modules/bulwark/dist/index.js')).href,
        health: pathToFileURL(join(dir, 'node_modules/bulwark/dist/health.js')).href,
      });
      await checkRuntime('deno', httpSend(server.url), expect, true);
    } finally {
      await server.stop();
    }
    expect(server.stderr()).toBe('');
  }, TEST_TIMEOUT);

  it('workerd: the smoke scenario and fetchHealthHandler in a worker bundled by esbuild, served on its own socket', async ({ expect }) => {
    const workerd = devBinary('workerd', '^1.20261123.1');
    const bundle = await build({
      absWorkingDir: dir,
      entryPoints: ['worker.mjs'],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      conditions: ['workerd', 'worker', 'browser'],
      outfile: join(dir, 'worker.bundle.js'),
      metafile: true,
      logLevel: 'silent',
    });
    expect(bundle.errors).toEqual([]);
    expect(bundle.warnings).toEqual([]);
    // bulwark came from the packed package, through its exports map.
    expect(Object.keys(bundle.metafile.inputs).filter((input) => input.includes('bulwark'))).toEqual(
      expect.arrayContaining(['node_modules/bulwark/dist/index.js', 'node_modules/bulwark/dist/health.js']),
    );
    expect(Object.keys(bundle.metafile.inputs).filter((input) => !/^node_modules\/bulwark\/dist\/[\w-]+\.js$/.test(input)).sort()).toEqual(['app.mjs', 'smoke.mjs', 'worker.mjs']);

    const port = await freePort();
    writeFileSync(
      join(dir, 'workerd.capnp'),
      `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);

const worker :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "worker.bundle.js") ],
  compatibilityDate = "${WORKERD_COMPATIBILITY_DATE}",
);
`,
    );
    const server = await startServer('workerd', workerd, ['serve', 'workerd.capnp'], { cwd: dir, port });
    try {
      await checkRuntime('workerd', httpSend(server.url), expect, true);
    } finally {
      await server.stop();
    }
    // Nothing but its start-up line: no warning about promises or I/O shared between requests.
    expect(server.stderr().split('\n').filter((line) => line !== '' && !line.startsWith('Listening on '))).toEqual([]);
  }, TEST_TIMEOUT);

  it('Chromium: the smoke scenario and fetchHealthHandler in a page, bulwark loaded with an import map', async ({ expect }) => {
    const executablePath = findChromium();
    const served: string[] = [];
    const missing: string[] = [];
    const page404 = (path: string): void => void missing.push(path);
    const files: Record<string, string> = { '/app/': dir, '/bulwark/': join(dir, 'node_modules', 'bulwark') };
    const html = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify({ imports: { bulwark: '/bulwark/dist/index.js', 'bulwark/health': '/bulwark/dist/health.js' } })}</script>
<script type="module">
  import { createApp } from '/app/app.mjs';
  window.resolved = { bulwark: import.meta.resolve('bulwark'), health: import.meta.resolve('bulwark/health') };
  window.app = createApp();
</script></head><body></body></html>`;
    const server: Server = createServer((request, response) => {
      const path = new URL(request.url ?? '/', 'http://x').pathname;
      served.push(path);
      if (path === '/') {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
        return;
      }
      const prefix = Object.keys(files).find((candidate) => path.startsWith(candidate));
      const base = prefix === undefined ? undefined : (files[prefix] as string);
      const file = base === undefined ? undefined : normalize(join(base, decodeURIComponent(path.slice((prefix as string).length))));
      if (base === undefined || file === undefined || !file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile()) {
        page404(path);
        response.writeHead(404).end();
        return;
      }
      const type = /\.m?js$/.test(file) ? 'text/javascript; charset=utf-8' : file.endsWith('.map') ? 'application/json' : 'application/octet-stream';
      response.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(readFileSync(file));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let browser: Browser | undefined;
    const marker = markerFor('chromium');
    const problems: string[] = [];
    try {
      browser = await chromium.launch({
        executablePath,
        timeout: START_TIMEOUT,
        // Its crash handler's database and caches in the project folder, not in ~/.config and ~/.cache.
        env: { ...process.env, [MARKER_NAME]: marker, XDG_CONFIG_HOME: join(dir, '.chromium', 'config'), XDG_CACHE_HOME: join(dir, '.chromium', 'cache') },
        args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const page = await browser.newPage();
      page.on('pageerror', (error) => problems.push(`page error: ${error.name}: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(`console.${message.type()}: ${message.text()}`);
      });
      page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`));
      await page.goto(origin, { timeout: START_TIMEOUT });
      // Loaded, or failed: a module that does not resolve is a page error, not a wait of START_TIMEOUT.
      const deadline = Date.now() + START_TIMEOUT;
      while (!(await page.evaluate(() => 'app' in window))) {
        if (problems.length > 0 || Date.now() > deadline) throw new Error(`the page did not load the app:\n${problems.join('\n') || 'timed out'}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(await page.evaluate(() => (window as unknown as { resolved: unknown }).resolved)).toEqual({
        bulwark: `${origin}/bulwark/dist/index.js`,
        health: `${origin}/bulwark/dist/health.js`,
      });
      // No server in a page: the handler is called with a Request and its Response read there.
      const send: Send = (method, path, headers) =>
        page.evaluate(
          async ({ method, path, headers }) => {
            const app = (window as unknown as { app: (request: Request) => Promise<Response> }).app;
            const response = await app(new Request(new URL(path, 'http://app.test'), { method, headers }));
            const seen: Record<string, string> = {};
            response.headers.forEach((value, name) => {
              seen[name] = value;
            });
            return { status: response.status, headers: seen, body: await response.text() };
          },
          { method, path, headers: headers ?? {} },
        );
      await checkRuntime('chromium', send, expect, false);
    } finally {
      await browser?.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await noneLeft('chromium', marker);
    expect(problems).toEqual([]);
    expect(missing).toEqual([]);
    expect(served).toEqual(expect.arrayContaining(['/', '/app/app.mjs', '/app/smoke.mjs', '/bulwark/dist/index.js', '/bulwark/dist/health.js']));
  }, TEST_TIMEOUT);
});
