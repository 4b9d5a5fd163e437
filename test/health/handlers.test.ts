import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  HealthMonitor,
  fetchHealthHandler,
  nodeHealthHandler,
  type NodeHealthRequest,
  type NodeHealthResponse,
} from '../../src/health/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { serve } from '../fixtures/http.js';
import { deferred } from '../fixtures/promises.js';

/** What a check's error may hold in real life: a host, a user and a password. */
const SECRET_ERROR = 'connect ECONNREFUSED postgres://admin:hunter2@db-7.internal.example:5432/orders';
const SECRETS = ['hunter2', 'db-7.internal.example', 'admin:'];

const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  while (closers.length > 0) await closers.pop()?.();
});

async function serveFastify(app: FastifyInstance): Promise<string> {
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => app.close());
  return url;
}

/** A node:http server with the health handler in front and a tiny app behind it. */
async function serveNode(health: HealthMonitor, options?: Parameters<typeof nodeHealthHandler>[1]): Promise<string> {
  const handle = nodeHealthHandler(health, options);
  return serve((req, res) => {
    void handle(req, res, () => {
      res.statusCode = 200;
      res.end('app');
    });
  });
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const response = await fetch(url, init);
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

function monitor(...checks: ['pass' | 'fail' | 'optional-fail'][]): HealthMonitor {
  const health = new HealthMonitor();
  checks.forEach(([kind], i) => {
    if (kind === 'pass') health.addCheck(`check${i}`, () => true);
    else if (kind === 'fail') health.addCheck(`check${i}`, () => Promise.reject(new Error(SECRET_ERROR)));
    else health.addCheck(`check${i}`, () => Promise.reject(new Error(SECRET_ERROR)), { critical: false });
  });
  return health;
}

describe('nodeHealthHandler on a real node:http server', () => {
  it('answers /health 200 with each check\'s status and duration, as no-store JSON', async () => {
    const health = new HealthMonitor().addCheck('database', () => true).addCircuitBreaker('payments', { state: 'closed' });
    const base = await serveNode(health);
    const response = await get(`${base}/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('vary')).toBe('Accept');
    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(response.text)));
    expect(response.json).toEqual({
      status: 'healthy',
      checks: { database: { status: 'pass', durationMs: expect.any(Number) as number }, payments: { status: 'pass', durationMs: 0 } },
    });
  });

  it.each([
    [['pass'], 200, 'healthy'],
    [['optional-fail'], 200, 'degraded'],
    [['pass', 'fail'], 503, 'unhealthy'],
  ] as const)('answers /health for checks %o with %i (%s)', async (kinds, code, status) => {
    const base = await serveNode(monitor(...kinds.map((kind) => [kind] as ['pass' | 'fail' | 'optional-fail'])));
    const response = await get(`${base}/health`);
    expect(response.status).toBe(code);
    expect(response.json).toMatchObject({ status });
  });

  it('answers /ready 503 while starting, 200 once ready, 503 from drain() on while /live stays 200', async () => {
    const health = new HealthMonitor().addCheck('database', () => true);
    const base = await serveNode(health);
    expect(await get(`${base}/ready`)).toMatchObject({ status: 503, json: { ready: false, reason: 'starting', checks: {} } });
    health.markReady();
    expect(await get(`${base}/ready`)).toMatchObject({ status: 200, json: { ready: true, checks: { database: { status: 'pass' } } } });
    health.drain();
    expect(await get(`${base}/ready`)).toMatchObject({ status: 503, json: { ready: false, reason: 'draining' } });
    expect(await get(`${base}/live`)).toMatchObject({ status: 200, json: { alive: true } });
    expect(await get(`${base}/health`)).toMatchObject({ status: 200, json: { status: 'healthy' } });
  });

  it('answers /ready 503 when a critical check fails', async () => {
    const health = monitor(['fail']);
    health.markReady();
    const base = await serveNode(health);
    expect(await get(`${base}/ready`)).toMatchObject({ status: 503, json: { ready: false, reason: 'unhealthy', checks: { check0: { status: 'fail' } } } });
  });

  it('answers /live 200 without running a check', async () => {
    const ping = vi.fn(() => false);
    const base = await serveNode(new HealthMonitor().addCheck('database', ping));
    const response = await get(`${base}/live`);
    expect(response).toMatchObject({ status: 200, json: { alive: true } });
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(ping).not.toHaveBeenCalled();
  });

  it('answers HEAD with the status and headers of GET, and no body', async () => {
    // A cached report, so both answers describe the same run (same durations, same length).
    const base = await serveNode(new HealthMonitor({ cacheTtl: 60_000 }).addCheck('database', () => Promise.reject(new Error(SECRET_ERROR))));
    const full = await get(`${base}/health`);
    const head = await get(`${base}/health`, { method: 'HEAD' });
    expect(head.status).toBe(503);
    expect(head.text).toBe('');
    expect(head.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(head.headers.get('cache-control')).toBe('no-store');
    expect(head.headers.get('content-length')).toBe(full.headers.get('content-length'));
  });

  it('matches a path with a query string or a trailing slash', async () => {
    const base = await serveNode(monitor(['pass']));
    expect(await get(`${base}/health?probe=kubelet&x=1`)).toMatchObject({ status: 200, json: { status: 'healthy' } });
    expect(await get(`${base}/health/`)).toMatchObject({ status: 200, json: { status: 'healthy' } });
    expect(await get(`${base}/live?`)).toMatchObject({ status: 200, json: { alive: true } });
  });

  it('hands any other path to next(), or answers 404 without next', async () => {
    const health = monitor(['pass']);
    const withNext = await serveNode(health);
    expect(await get(`${withNext}/orders`)).toMatchObject({ status: 200, text: 'app' });
    expect(await get(`${withNext}/healthcheck`)).toMatchObject({ status: 200, text: 'app' });
    const handle = nodeHealthHandler(health);
    const alone = await serve((req, res) => void handle(req, res));
    const notFound = await get(`${alone}/orders`);
    expect(notFound).toMatchObject({ status: 404, json: { error: 'not found' } });
    expect([notFound.headers.get('cache-control'), notFound.headers.get('vary')]).toEqual(['no-store', 'Accept']);
    expect(await get(`${alone}/health`)).toMatchObject({ status: 200 });
  });

  it.each(['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])('answers %s on a health path 405 with Allow, and runs no check', async (method) => {
    const ping = vi.fn(() => true);
    const base = await serveNode(new HealthMonitor().addCheck('database', ping));
    const response = await get(`${base}/health`, { method });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('vary')).toBe('Accept');
    expect(ping).not.toHaveBeenCalled();
  });

  it('serves the IETF health+json format when Accept asks for it', async () => {
    const health = new HealthMonitor()
      .addCheck('database', () => true)
      .addCheck('search', () => false, { critical: false })
      .addCircuitBreaker('payments', { state: 'half-open' });
    health.markReady();
    const base = await serveNode(health);
    const accept = { headers: { accept: 'application/health+json' } };
    const response = await get(`${base}/health`, accept);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/health+json');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const iso = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as string;
    expect(response.json).toEqual({
      status: 'warn',
      checks: {
        database: [{ status: 'pass', observedValue: expect.any(Number) as number, observedUnit: 'ms', time: iso }],
        search: [{ status: 'fail', observedValue: expect.any(Number) as number, observedUnit: 'ms', time: iso }],
        payments: [{ status: 'warn', observedValue: 0, observedUnit: 'ms', time: iso }],
      },
    });
    expect(await get(`${base}/ready`, accept)).toMatchObject({ status: 200, json: { status: 'pass', checks: { database: [{ status: 'pass' }] } } });
    expect(await get(`${base}/live`, accept)).toMatchObject({ status: 200, json: { status: 'pass' } });
    health.drain();
    expect(await get(`${base}/ready`, accept)).toMatchObject({ status: 503, json: { status: 'fail', notes: ['draining'], checks: {} } });
  });

  it('answers health+json fail with 503 for an unhealthy service', async () => {
    const base = await serveNode(monitor(['fail']));
    const response = await get(`${base}/health`, { headers: { accept: 'application/health+json' } });
    expect(response.status).toBe(503);
    expect(response.json).toMatchObject({ status: 'fail', checks: { check0: [{ status: 'fail' }] } });
  });

  it.each([
    ['application/json', 'application/json; charset=utf-8'],
    ['*/*', 'application/json; charset=utf-8'],
    ['text/html, application/health+json;q=0.9', 'application/health+json'],
    ['APPLICATION/HEALTH+JSON', 'application/health+json'],
    ['application/health+json; q=0', 'application/json; charset=utf-8'],
  ])('chooses the format from Accept: %s', async (accept, type) => {
    const base = await serveNode(monitor(['pass']));
    const response = await get(`${base}/health`, { headers: { accept } });
    expect(response.headers.get('content-type')).toBe(type);
  });

  it('keeps error text out of every body by default: a secret in an error message never leaks', async () => {
    const health = monitor(['fail'], ['optional-fail']);
    health.addCircuitBreaker('payments', { state: 'open' });
    health.markReady();
    const base = await serveNode(health);
    const bodies = [
      await get(`${base}/health`),
      await get(`${base}/ready`),
      await get(`${base}/health`, { headers: { accept: 'application/health+json' } }),
      await get(`${base}/ready`, { headers: { accept: 'application/health+json' } }),
    ];
    for (const body of bodies) {
      for (const secret of SECRETS) expect(body.text).not.toContain(secret);
      expect(body.text).not.toContain('ECONNREFUSED');
      expect(body.text).not.toMatch(/"(error|output|details|critical)"/);
    }
    expect(bodies[0]?.json).toEqual({
      status: 'unhealthy',
      checks: {
        check0: { status: 'fail', durationMs: expect.any(Number) as number },
        check1: { status: 'fail', durationMs: expect.any(Number) as number },
        payments: { status: 'fail', durationMs: 0 },
      },
    });
  });

  it('shows error text, criticality and details with { verbose: true }', async () => {
    const health = monitor(['fail']);
    health.addCircuitBreaker('payments', { state: 'open' });
    const base = await serveNode(health, { verbose: true });
    const json = await get(`${base}/health`);
    expect(json.json).toMatchObject({
      checks: {
        check0: { status: 'fail', critical: true, error: SECRET_ERROR },
        payments: { status: 'fail', critical: false, error: 'circuit open', details: { state: 'open' } },
      },
    });
    const ietf = await get(`${base}/health`, { headers: { accept: 'application/health+json' } });
    expect(ietf.json).toMatchObject({ checks: { check0: [{ status: 'fail', output: SECRET_ERROR, critical: true }] } });
  });

  it('marks a timed-out check in a verbose body, and answers once the timeout elapses when a check hangs', async () => {
    const clock = new CountingClock();
    const checkStarted = deferred();
    const health = new HealthMonitor({ timeout: 20, clock }).addCheck('database', () => {
      checkStarted.resolve();
      return new Promise(() => {});
    });
    const base = await serveNode(health, { verbose: true });
    const answered = get(`${base}/health`);
    await checkStarted.promise;
    await clock.advance(20);
    const response = await answered;
    expect(response.status).toBe(503);
    expect(response.json).toMatchObject({ checks: { database: { status: 'fail', timedOut: true, error: 'timed out after 20 ms' } } });
  });

  it('decides verbose per request with a function, and stays terse when that function throws', async () => {
    const health = monitor(['fail']);
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const base = await serveNode(health, {
      verbose: (request: NodeHealthRequest) => {
        if (request.headers['x-explode'] !== undefined) throw new Error('predicate bug');
        return request.headers['x-internal-token'] === 'letmein';
      },
    });
    expect((await get(`${base}/health`)).text).not.toContain('hunter2');
    expect((await get(`${base}/health`, { headers: { 'x-internal-token': 'nope' } })).text).not.toContain('hunter2');
    expect((await get(`${base}/health`, { headers: { 'x-internal-token': 'letmein' } })).text).toContain('hunter2');
    const exploded = await get(`${base}/health`, { headers: { 'x-internal-token': 'letmein', 'x-explode': '1' } });
    expect(exploded.status).toBe(503);
    expect(exploded.text).not.toContain('hunter2');
    expect(reported).toHaveBeenCalledWith('bulwark/health: the verbose predicate threw', expect.objectContaining({ message: 'predicate bug' }));
  });

  it('serves custom paths and switches an endpoint off with false', async () => {
    const health = monitor(['pass']);
    health.markReady();
    const base = await serveNode(health, { paths: { health: '/healthz', ready: '/readyz/', live: false } });
    expect(await get(`${base}/healthz`)).toMatchObject({ status: 200, json: { status: 'healthy' } });
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 200, json: { ready: true } });
    expect(await get(`${base}/live`)).toMatchObject({ text: 'app' });
    expect(await get(`${base}/health`)).toMatchObject({ text: 'app' });
    expect(nodeHealthHandler(health, { paths: { health: '/healthz', live: false } }).paths).toEqual({ health: '/healthz', ready: '/ready', live: false });
  });

  it('shares one run among concurrent requests', async () => {
    const gate = deferred<boolean>();
    const ping = vi.fn(() => gate.promise);
    const handle = nodeHealthHandler(new HealthMonitor().addCheck('database', ping));
    let arrived = 0;
    const allArrived = deferred();
    const base = await serve((req, res) => {
      arrived++;
      // handle() joins the run synchronously, so all eight wait on it once the last is in.
      void handle(req, res);
      if (arrived === 8) allArrived.resolve();
    });
    const responses = Promise.all(Array.from({ length: 8 }, () => get(`${base}/health`)));
    await allArrived.promise;
    expect(arrived).toBe(8); // every request is waiting on the one run
    gate.resolve(true);
    const answered = await responses;
    expect(answered.map((response) => response.status)).toEqual(Array(8).fill(200));
    expect(ping).toHaveBeenCalledTimes(1);
  });
});

describe('nodeHealthHandler edge cases (without a server)', () => {
  function fakeResponse(overrides: Partial<NodeHealthResponse> = {}) {
    const headers: Record<string, string> = {};
    const response = {
      statusCode: 200,
      headersSent: false,
      body: undefined as string | undefined,
      ended: false,
      setHeader: vi.fn((name: string, value: string) => {
        headers[name] = value;
      }),
      end: vi.fn((chunk?: string) => {
        response.body = chunk;
        response.ended = true;
      }),
      headers,
      ...overrides,
    };
    return response;
  }

  it('ends a HEAD response without a body, with the length a GET body would have', async () => {
    const health = new HealthMonitor();
    const get = fakeResponse();
    await nodeHealthHandler(health)({ method: 'GET', url: '/live', headers: {} }, get);
    const head = fakeResponse();
    await nodeHealthHandler(health)({ method: 'HEAD', url: '/live', headers: {} }, head);
    expect(head.end).toHaveBeenCalledWith();
    expect(head.body).toBeUndefined();
    expect(head.headers['content-length']).toBe(String(get.body?.length));
    expect(head.statusCode).toBe(200);
  });

  it('routes an absolute-form request target', async () => {
    const response = fakeResponse();
    await nodeHealthHandler(new HealthMonitor())({ method: 'GET', url: 'http://example.com/live?x=1', headers: {} }, response);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body ?? '')).toEqual({ alive: true });
  });

  it('leaves a response alone whose headers were already sent', async () => {
    const response = fakeResponse({ headersSent: true });
    await nodeHealthHandler(new HealthMonitor())({ method: 'GET', url: '/live', headers: {} }, response);
    expect(response.setHeader).not.toHaveBeenCalled();
    expect(response.end).not.toHaveBeenCalled();
  });

  it('never rejects: a response that throws goes to next(error), or is reported without next', async () => {
    const broken = new Error('socket gone');
    const throwing = fakeResponse({
      setHeader: () => {
        throw broken;
      },
    });
    const next = vi.fn();
    await expect(nodeHealthHandler(new HealthMonitor())({ method: 'GET', url: '/live', headers: {} }, throwing, next)).resolves.toBeUndefined();
    expect(next).toHaveBeenCalledWith(broken);
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    await expect(nodeHealthHandler(new HealthMonitor())({ method: 'GET', url: '/live', headers: {} }, throwing)).resolves.toBeUndefined();
    expect(reported).toHaveBeenCalledWith('bulwark/health: nodeHealthHandler threw', broken);
  });

  it('calls next() for another path synchronously, once, and lets what it throws reach the caller', () => {
    const appError = new Error('app bug');
    const next = vi.fn(() => {
      throw appError;
    });
    const response = fakeResponse();
    expect(() => nodeHealthHandler(new HealthMonitor())({ method: 'GET', url: '/orders', headers: {} }, response, next)).toThrow(appError);
    expect(next).toHaveBeenCalledTimes(1);
    expect(next).toHaveBeenCalledWith();
    expect(response.end).not.toHaveBeenCalled();
  });

  it('reads an Accept header given as an array', async () => {
    const response = fakeResponse();
    await nodeHealthHandler(new HealthMonitor())({ method: 'GET', url: '/live', headers: { accept: ['text/plain', 'application/health+json'] } }, response);
    expect(response.headers['content-type']).toBe('application/health+json');
  });
});

describe('health handler options', () => {
  it.each([
    ['nodeHealthHandler', nodeHealthHandler],
    ['fetchHealthHandler', fetchHealthHandler],
  ] as const)('%s rejects bad arguments with clear errors', (name, build) => {
    const health = new HealthMonitor();
    const make = build as (monitor: unknown, options?: unknown) => unknown;
    expect(() => make(undefined)).toThrow(new TypeError(`${name}: the first argument must be a HealthMonitor, got undefined`));
    expect(() => make({ check() {} })).toThrow(TypeError);
    expect(() => make(health, 'verbose')).toThrow(`${name} options must be an object, got "verbose"`);
    expect(() => make(health, { verbose: 'yes' })).toThrow(new TypeError(`${name} verbose must be true, false or a function of the request, got "yes"`));
    expect(() => make(health, { path: '/health' })).toThrow(`${name} has no option "path" (did you mean "paths"?); known options: "paths", "verbose"`);
    expect(() => make(health, { paths: { health: 'health' } })).toThrow(new RangeError(`${name} paths.health must start with "/" and hold no query, fragment or space, got "health"`));
    expect(() => make(health, { paths: { ready: '/ready?x' } })).toThrow(RangeError);
    expect(() => make(health, { paths: { live: 42 } })).toThrow(new TypeError(`${name} paths.live must be a path string or false, got 42`));
    expect(() => make(health, { paths: { ready: '/health' } })).toThrow(new RangeError(`${name} paths: two endpoints share the path "/health"`));
    expect(() => make(health, { paths: { health: false, ready: false, live: false } })).toThrow(`${name} paths: every endpoint is switched off`);
    expect(() => make(health, { paths: { healthz: '/healthz' } })).toThrow(`${name} paths has no option "healthz"`);
    expect(() => make(health, { paths: '/health' })).toThrow(TypeError);
  });
});

describe('Express 5 (the real package)', () => {
  it('serves the endpoints through app.use and hands other paths to the app', async () => {
    const health = monitor(['pass'], ['optional-fail']);
    health.markReady();
    const app = express();
    app.use(nodeHealthHandler(health));
    app.get('/orders', (_req, res) => {
      res.json({ orders: [] });
    });
    const base = await serve(app);
    expect(await get(`${base}/health`)).toMatchObject({ status: 200, json: { status: 'degraded' } });
    expect(await get(`${base}/ready`)).toMatchObject({ status: 200, json: { ready: true } });
    expect(await get(`${base}/live`)).toMatchObject({ status: 200, json: { alive: true } });
    expect(await get(`${base}/orders`)).toMatchObject({ status: 200, json: { orders: [] } });
    expect((await get(`${base}/nowhere`)).status).toBe(404); // Express's own 404
    const head = await get(`${base}/health`, { method: 'HEAD' });
    expect(head).toMatchObject({ status: 200, text: '' });
    expect((await get(`${base}/health`, { method: 'POST' })).headers.get('allow')).toBe('GET, HEAD');
    expect((await get(`${base}/health`)).text).not.toContain('hunter2');
  });

  it('works mounted under a prefix, and with a verbose predicate typed for Express', async () => {
    const health = monitor(['fail']);
    const app = express();
    app.use(
      '/ops',
      nodeHealthHandler(health, { verbose: (req: express.Request) => req.get('x-internal-token') === 'letmein' }),
    );
    const base = await serve(app);
    expect(await get(`${base}/ops/health`)).toMatchObject({ status: 503, json: { status: 'unhealthy' } });
    expect((await get(`${base}/ops/health`)).text).not.toContain('hunter2');
    expect((await get(`${base}/ops/health`, { headers: { 'x-internal-token': 'letmein' } })).text).toContain('hunter2');
    expect((await get(`${base}/health`)).status).toBe(404);
  });

  it('works mounted at a health path itself (app.use(\'/health\', handler))', async () => {
    const app = express();
    const handle = nodeHealthHandler(monitor(['pass']));
    app.use('/health', handle);
    app.use('/live', handle);
    app.get('/health/details', (_req, res) => {
      res.send('details');
    });
    const base = await serve(app);
    expect(await get(`${base}/health`)).toMatchObject({ status: 200, json: { status: 'healthy' } });
    expect(await get(`${base}/health?x=1`)).toMatchObject({ status: 200, json: { status: 'healthy' } });
    expect(await get(`${base}/live`)).toMatchObject({ status: 200, json: { alive: true } });
    expect(await get(`${base}/health/details`)).toMatchObject({ status: 200, text: 'details' });
  });
});

describe('Fastify 5 (the real package)', () => {
  async function fastifyApp(health: HealthMonitor): Promise<string> {
    const app = Fastify();
    const handle = nodeHealthHandler(health);
    for (const path of Object.values(handle.paths)) {
      if (path === false) continue;
      app.all(path, (request, reply) => {
        reply.hijack();
        return handle(request.raw, reply.raw);
      });
    }
    app.get('/orders', () => ({ orders: [] }));
    return serveFastify(app);
  }

  it('serves the endpoints through hijacked routes, next to the app\'s own routes', async () => {
    const health = monitor(['pass']);
    const base = await fastifyApp(health);
    expect(await get(`${base}/health`)).toMatchObject({ status: 200, json: { status: 'healthy' } });
    expect(await get(`${base}/ready`)).toMatchObject({ status: 503, json: { ready: false, reason: 'starting' } });
    health.markReady();
    expect(await get(`${base}/ready`)).toMatchObject({ status: 200, json: { ready: true } });
    expect(await get(`${base}/live`)).toMatchObject({ status: 200, json: { alive: true } });
    expect(await get(`${base}/orders`)).toMatchObject({ status: 200, json: { orders: [] } });
    expect(await get(`${base}/health?from=lb`)).toMatchObject({ status: 200 });
  });

  it('answers HEAD without a body, 405 for POST, health+json on request, and 503 when unhealthy', async () => {
    const base = await fastifyApp(monitor(['fail']));
    const head = await get(`${base}/health`, { method: 'HEAD' });
    expect(head).toMatchObject({ status: 503, text: '' });
    expect(head.headers.get('cache-control')).toBe('no-store');
    const post = await get(`${base}/health`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const ietf = await get(`${base}/health`, { headers: { accept: 'application/health+json' } });
    expect(ietf.status).toBe(503);
    expect(ietf.headers.get('content-type')).toBe('application/health+json');
    expect(ietf.json).toMatchObject({ status: 'fail' });
    expect(ietf.text).not.toContain('hunter2');
  });
});

describe('fetchHealthHandler with real Request objects', () => {
  const at = (path: string, init?: RequestInit) => new Request(`https://service.example${path}`, init);

  it('answers /health, /ready and /live like the node handler', async () => {
    const health = monitor(['pass'], ['optional-fail']);
    const handle = fetchHealthHandler(health);
    const response = await handle(at('/health'));
    expect(response?.status).toBe(200);
    expect(response?.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response?.headers.get('cache-control')).toBe('no-store');
    expect(await response?.json()).toEqual({
      status: 'degraded',
      checks: { check0: { status: 'pass', durationMs: expect.any(Number) as number }, check1: { status: 'fail', durationMs: expect.any(Number) as number } },
    });
    expect((await handle(at('/ready')))?.status).toBe(503);
    health.markReady();
    expect((await handle(at('/ready')))?.status).toBe(200);
    health.drain();
    const ready = await handle(at('/ready'));
    expect(ready?.status).toBe(503);
    expect(await ready?.json()).toEqual({ ready: false, reason: 'draining', checks: {} });
    const live = await handle(at('/live'));
    expect(live?.status).toBe(200);
    expect(await live?.json()).toEqual({ alive: true });
  });

  it('resolves undefined for another path, so the request can go on', async () => {
    const handle = fetchHealthHandler(new HealthMonitor());
    await expect(handle(at('/orders'))).resolves.toBeUndefined();
    await expect(handle(at('/'))).resolves.toBeUndefined();
  });

  it('answers 503 when unhealthy, HEAD without a body, 405 with Allow for other methods', async () => {
    const handle = fetchHealthHandler(monitor(['fail']));
    expect((await handle(at('/health')))?.status).toBe(503);
    const head = await handle(at('/health', { method: 'HEAD' }));
    expect(head?.status).toBe(503);
    expect(head?.body).toBeNull();
    // The length GET sends: left to the server, Bun.serve and Deno.serve would send 0 for a null body.
    const getLength = new TextEncoder().encode(await (await handle(at('/health')))?.text()).byteLength;
    expect(head?.headers.get('content-length')).toBe(String(getLength));
    expect(head?.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const post = await handle(at('/health', { method: 'POST', body: '{}' }));
    expect(post?.status).toBe(405);
    expect(post?.headers.get('allow')).toBe('GET, HEAD');
    expect([post?.headers.get('cache-control'), post?.headers.get('vary')]).toEqual(['no-store', 'Accept']);
  });

  it('matches with a query string, serves health+json on request, and keeps secrets out by default', async () => {
    const handle = fetchHealthHandler(monitor(['fail']));
    const response = await handle(at('/health?verbose=1', { headers: { accept: 'application/health+json' } }));
    expect(response?.status).toBe(503);
    expect(response?.headers.get('content-type')).toBe('application/health+json');
    const text = (await response?.text()) ?? '';
    expect(JSON.parse(text)).toMatchObject({ status: 'fail', checks: { check0: [{ status: 'fail', observedUnit: 'ms' }] } });
    for (const secret of SECRETS) expect(text).not.toContain(secret);
  });

  it('shows error text with verbose, also decided per request', async () => {
    const verbose = fetchHealthHandler(monitor(['fail']), { verbose: true });
    expect(await (await verbose(at('/health')))?.text()).toContain('hunter2');
    const perRequest = fetchHealthHandler(monitor(['fail']), { verbose: (request) => request.headers.get('x-internal-token') === 'letmein' });
    expect(await (await perRequest(at('/health')))?.text()).not.toContain('hunter2');
    expect(await (await perRequest(at('/health', { headers: { 'x-internal-token': 'letmein' } })))?.text()).toContain('hunter2');
  });

  it('serves custom paths, such as a Next.js route under /api', async () => {
    const handle = fetchHealthHandler(new HealthMonitor(), { paths: { health: '/api/health', ready: false, live: false } });
    expect((await handle(at('/api/health')))?.status).toBe(200);
    await expect(handle(at('/health'))).resolves.toBeUndefined();
    await expect(handle(at('/ready'))).resolves.toBeUndefined();
  });
});

// The same handler also serves a node:http server through Request/Response: a fetch-style
// app mounted on node, as some adapters do. Proves the two handlers agree on one monitor.
describe('both handlers on one monitor', () => {
  it('give the same status and body', async () => {
    const health = monitor(['pass'], ['optional-fail']);
    const base = await serveNode(health);
    const viaNode = await get(`${base}/health`);
    const viaFetch = await fetchHealthHandler(health)(new Request(`${base}/health`));
    expect(viaFetch?.status).toBe(viaNode.status);
    const nodeJson = viaNode.json as { checks: Record<string, { durationMs: number }> };
    const fetchJson = (await viaFetch?.json()) as { checks: Record<string, { durationMs: number }> };
    for (const json of [nodeJson, fetchJson]) for (const check of Object.values(json.checks)) check.durationMs = 0;
    expect(fetchJson).toEqual(nodeJson);
  });
});

// Keeps the IncomingMessage/ServerResponse types honest: node's own objects fit the structural types.
const _typecheck = (req: IncomingMessage, res: ServerResponse): Promise<void> => nodeHealthHandler(new HealthMonitor())(req, res);
void _typecheck;

describe('what the bodies hold, field by field', () => {
  const at = (path: string, init?: RequestInit) => new Request(`https://service.example${path}`, init);
  const HEALTH_JSON = { headers: { accept: 'application/health+json' } };
  /** The time CountingClock starts at, as health+json prints it. */
  const TIME = new Date(1_700_000_000_000).toISOString();

  async function body(response: Response | undefined): Promise<unknown> {
    return JSON.parse((await response?.text()) ?? '');
  }

  it.each([
    ['check', { ready() {}, live() {} }],
    ['ready', { check() {}, live() {} }],
    ['live', { check() {}, ready() {} }],
  ])('refuses a monitor without %s()', (_missing, fake) => {
    expect(() => fetchHealthHandler(fake as never)).toThrow(new TypeError('fetchHealthHandler: the first argument must be a HealthMonitor, got an object'));
    expect(() => nodeHealthHandler(fake as never)).toThrow(new TypeError('nodeHealthHandler: the first argument must be a HealthMonitor, got an object'));
  });

  it('serves an endpoint at the root path "/", which keeps its slash', async () => {
    const handle = fetchHealthHandler(new HealthMonitor(), { paths: { live: '/', health: false, ready: false } });
    expect(handle.paths).toEqual({ health: false, ready: false, live: '/' });
    expect(await body(await handle(at('/')))).toEqual({ alive: true });
    await expect(handle(at('/live'))).resolves.toBeUndefined();
  });

  it.each([
    ['application/health+json; charset=utf-8', 'application/health+json'],
    ['application/health+json; charset=utf-8; q=0.5', 'application/health+json'],
    ['application/health+json; charset=utf-8; q=0', 'application/json; charset=utf-8'],
  ])('reads q among other parameters of Accept: %s', async (accept, type) => {
    const response = await fetchHealthHandler(new HealthMonitor())(at('/live', { headers: { accept } }));
    expect(response?.headers.get('content-type')).toBe(type);
  });

  it('answers 405 with a JSON error body', async () => {
    const response = await fetchHealthHandler(new HealthMonitor())(at('/ready', { method: 'DELETE' }));
    expect(response?.status).toBe(405);
    expect(response?.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response?.text()).toBe('{"error":"method not allowed"}');
  });

  it('stays terse when the verbose predicate answers with a promise, and reports why', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const handle = fetchHealthHandler(monitor(['fail']), { verbose: () => Promise.resolve(true) as unknown as boolean });
    const response = await handle(at('/health'));
    expect(response?.status).toBe(503);
    expect(await response?.text()).not.toContain('hunter2');
    expect(reported).toHaveBeenCalledTimes(1);
    expect(reported).toHaveBeenCalledWith(
      'bulwark/health: the verbose predicate threw',
      new TypeError('the verbose predicate must return its answer synchronously, got a promise (an async function?)'),
    );
  });

  it('answers 500 with a JSON error body, and reports the error, when the monitor itself throws', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const broken = new Error('monitor bug');
    const fake = { check: () => Promise.reject(broken), ready: () => Promise.reject(broken), live: () => ({ alive: true }) };
    const response = await fetchHealthHandler(fake as never)(at('/health'));
    expect(response?.status).toBe(500);
    expect(['content-type', 'cache-control', 'vary'].map((name) => response?.headers.get(name))).toEqual(['application/json; charset=utf-8', 'no-store', 'Accept']);
    expect(await response?.text()).toBe('{"error":"internal error"}');
    expect(reported).toHaveBeenCalledWith('bulwark/health: fetchHealthHandler threw', broken);

    const headers: Record<string, string> = {};
    const res = { statusCode: 200, setHeader: (name: string, value: string) => void (headers[name] = value), end: vi.fn() };
    await nodeHealthHandler(fake as never)({ method: 'GET', url: '/ready', headers: {} }, res);
    expect(res.statusCode).toBe(500);
    expect(headers).toEqual({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', vary: 'Accept', 'content-length': '26' });
    expect(res.end).toHaveBeenCalledWith('{"error":"internal error"}');
    expect(reported).toHaveBeenCalledWith('bulwark/health: nodeHealthHandler threw', broken);
  });

  it('routes a request without a url as "/"', async () => {
    const res = { statusCode: 0, setHeader: vi.fn(), end: vi.fn() };
    const next = vi.fn();
    await nodeHealthHandler(new HealthMonitor(), { paths: { live: '/', health: false, ready: false } })({ method: 'GET', headers: {} }, res, next);
    expect(next).not.toHaveBeenCalled();
    expect(res.statusCode).toBe(200);
    expect(res.end).toHaveBeenCalledWith('{"alive":true}');
  });

  it('answers a request without a method as a GET', async () => {
    const headers: Record<string, string> = {};
    const res = { statusCode: 0, setHeader: (name: string, value: string) => void (headers[name] = value), end: vi.fn() };
    await nodeHealthHandler(new HealthMonitor())({ url: '/live', headers: {} }, res);
    expect(res.statusCode).toBe(200);
    expect(res.end).toHaveBeenCalledWith('{"alive":true}');
  });

  it('gives readiness in health+json "warn" while a critical check warns, and no notes when ready', async () => {
    const clock = new CountingClock();
    const breaker = { state: 'half-open' as const };
    const health = new HealthMonitor({ clock }).addCheck('database', () => true).addCircuitBreaker('auth', breaker, { critical: true });
    health.markReady();
    const handle = fetchHealthHandler(health);
    const ready = await handle(at('/ready', HEALTH_JSON));
    expect(ready?.status).toBe(200);
    expect(await body(ready)).toEqual({
      status: 'warn',
      checks: {
        database: [{ status: 'pass', observedValue: 0, observedUnit: 'ms', time: TIME }],
        auth: [{ status: 'warn', observedValue: 0, observedUnit: 'ms', time: TIME }],
      },
    });
    (breaker as { state: string }).state = 'closed';
    expect(await body(await handle(at('/ready', HEALTH_JSON)))).toMatchObject({ status: 'pass' });
    expect(await body(await handle(at('/ready')))).toEqual({ ready: true, checks: { database: { status: 'pass', durationMs: 0 }, auth: { status: 'pass', durationMs: 0 } } });
  });

  it('shows in a verbose body exactly what each check has: no error, timedOut or details for a passing check', async () => {
    const clock = new CountingClock();
    const health = new HealthMonitor({ clock })
      .addCheck('database', () => true)
      .addCheck('search', () => false, { critical: false })
      .addCircuitBreaker('payments', { state: 'closed', stats: () => ({ failures: 0 }) });
    const handle = fetchHealthHandler(health, { verbose: true });
    expect(await body(await handle(at('/health')))).toEqual({
      status: 'degraded',
      checks: {
        database: { status: 'pass', durationMs: 0, critical: true },
        search: { status: 'fail', durationMs: 0, critical: false, error: 'the check returned false' },
        payments: { status: 'pass', durationMs: 0, critical: false, details: { state: 'closed', stats: { failures: 0 } } },
      },
    });
    expect(await body(await handle(at('/health', HEALTH_JSON)))).toEqual({
      status: 'warn',
      checks: {
        database: [{ status: 'pass', observedValue: 0, observedUnit: 'ms', time: TIME, critical: true }],
        search: [{ status: 'fail', observedValue: 0, observedUnit: 'ms', time: TIME, output: 'the check returned false', critical: false }],
        payments: [{ status: 'pass', observedValue: 0, observedUnit: 'ms', time: TIME, critical: false, details: { state: 'closed', stats: { failures: 0 } } }],
      },
    });
  });

  it('leaves out details JSON cannot hold (a BigInt counter), and still answers', async () => {
    const health = new HealthMonitor({ clock: new CountingClock() }).addCircuitBreaker('payments', { state: 'open', stats: () => ({ calls: 10n }) });
    const handle = fetchHealthHandler(health, { verbose: true });
    const plain = await handle(at('/health'));
    expect(plain?.status).toBe(200);
    expect(await body(plain)).toEqual({
      status: 'degraded',
      checks: { payments: { status: 'fail', durationMs: 0, critical: false, error: 'circuit open' } },
    });
    expect(await body(await handle(at('/health', HEALTH_JSON)))).toEqual({
      status: 'warn',
      checks: { payments: [{ status: 'fail', observedValue: 0, observedUnit: 'ms', time: TIME, output: 'circuit open', critical: false }] },
    });
  });
});
