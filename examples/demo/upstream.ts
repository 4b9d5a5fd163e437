/**
 * The demo's upstream: real HTTP servers on 127.0.0.1 that play several dependencies, one
 * server on a port of its own (a random free one) per dependency, so that each is an origin
 * of its own to the clients (`http://127.0.0.1:<port>/payments/…`), and misbehave the way a
 * script tells them to. A dependency may enforce a vendor's rate limit of
 * its own (`429 Too Many Requests` beyond it). The server keeps its own counters and a
 * histogram of how long its answers take, so the dashboard can show what the server really
 * saw next to what the callers saw through their policies.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How one dependency behaves for a while. Shares are of requests, between 0 and 1. */
export interface Condition {
  /** How long a normal answer takes, in ms: uniform between the two bounds. */
  readonly latency: readonly [min: number, max: number];
  /** Share of requests answered `500 Internal Server Error` at once. */
  readonly errors?: number;
  /** Share of requests whose connection is dropped without an answer. */
  readonly drops?: number;
  /** Share of requests that take `latency` of the spike instead (still answered 200). */
  readonly spike?: { readonly share: number; readonly latency: readonly [min: number, max: number] };
  /**
   * A long tail: one request in `every` (the `every`-th, the `2 × every`-th, … the server
   * receives) takes `latency` of the tail instead (still answered 200). Counted, not drawn at
   * random, so every run has the same tail.
   */
  readonly tail?: { readonly every: number; readonly latency: readonly [min: number, max: number] };
  /**
   * A full outage: `'unavailable'` answers every request `503` at once, `'dropped'` drops every
   * connection, `'hanging'` never answers (the caller's timeout has to end the request).
   */
  readonly outage?: 'unavailable' | 'dropped' | 'hanging';
}

/** What the server did, per dependency, since it started. */
export interface UpstreamCounters {
  /** Requests received. */
  requests: number;
  /** Answered `200`. */
  ok: number;
  /** Answered `500`. */
  errors: number;
  /** Answered `503` (outage). */
  unavailable: number;
  /** Answered `429`: beyond the dependency's own rate limit (see {@link VendorLimit}). */
  limited: number;
  /** Connections dropped on purpose, without an answer. */
  dropped: number;
  /** Requests the client gave up on before the answer was sent (its timeout aborted them). */
  abandoned: number;
  /** Requests received and not finished yet. */
  inFlight: number;
}

/**
 * A rate limit the server itself enforces for a dependency, as a vendor's API does: at most
 * `rate` requests in any window of `interval` ms (a sliding window, the strictest kind); a
 * request beyond it is answered `429` at once and does not count.
 */
export interface VendorLimit {
  readonly rate: number;
  readonly interval: number;
}

/** How long the answers of one dependency take, as the server plans them: a cumulative histogram. */
export interface UpstreamLatency {
  /** Answers planned (every request answered after a while, whether or not the client waited for it). */
  count: number;
  /** Their planned latencies summed, in ms. */
  sum: number;
  /** Per bound: answers planned to take at most that many ms; the last bound is `Infinity`. */
  readonly buckets: { readonly le: number; count: number }[];
}

/** How to start the upstream. */
export interface UpstreamOptions {
  /** The rate limits the server enforces, by dependency; none by default. */
  readonly limits?: Readonly<Record<string, VendorLimit>>;
  /** Bounds of the latency histograms, in ms, ascending. */
  readonly buckets?: readonly number[];
  /** The source of randomness (latencies, errors, drops). */
  readonly random?: () => number;
}

/** A running upstream. */
export interface Upstream {
  /** The origin of each dependency's server, by dependency name: `http://127.0.0.1:<port>`. */
  readonly origins: ReadonlyMap<string, string>;
  /** Live counters per dependency name. */
  readonly counters: ReadonlyMap<string, Readonly<UpstreamCounters>>;
  /** Live latency histograms per dependency name. */
  readonly latency: ReadonlyMap<string, Readonly<UpstreamLatency>>;
  /** From now on, `dependency` behaves as `condition` says. */
  set(dependency: string, condition: Condition): void;
  /**
   * Starts every counter and histogram from zero again (requests in flight stay counted as
   * such), and every vendor limit's window empty.
   */
  resetCounters(): void;
  /** Stops listening, ends every open request and connection, and resolves once closed. */
  close(): Promise<void>;
}

const HEALTHY: Condition = { latency: [5, 20] };

/** Counters of a dependency that has seen nothing yet. */
export function zeroCounters(): UpstreamCounters {
  return { requests: 0, ok: 0, errors: 0, unavailable: 0, limited: 0, dropped: 0, abandoned: 0, inFlight: 0 };
}

/** An empty latency histogram with `bounds` (and `Infinity` after them). */
export function emptyLatency(bounds: readonly number[]): UpstreamLatency {
  return { count: 0, sum: 0, buckets: [...bounds, Infinity].map((le) => ({ le, count: 0 })) };
}

/** The path the demo's warm-up requests take: answered at once, counted nowhere, limited by nothing. */
export const WARM_UP_ID = 'warm-up';

/** Starts the upstream: a server per dependency, answering `/<dependency>/<id>`, each healthy to begin with. */
export async function startUpstream(dependencies: readonly string[], options: UpstreamOptions = {}): Promise<Upstream> {
  const { limits = {}, buckets = [], random = Math.random } = options;
  const conditions = new Map<string, Condition>(dependencies.map((name) => [name, HEALTHY]));
  const counters = new Map<string, UpstreamCounters>(dependencies.map((name) => [name, zeroCounters()]));
  const latency = new Map<string, UpstreamLatency>(dependencies.map((name) => [name, emptyLatency(buckets)]));
  /** Per limited dependency, when the requests it let through in the current window arrived, oldest first. */
  const admitted = new Map<string, number[]>(Object.keys(limits).map((name) => [name, []]));
  const between = ([min, max]: readonly [number, number]): number => min + random() * (max - min);

  /** True when `name` has a vendor limit and the request arriving now is beyond it. */
  const overLimit = (name: string): boolean => {
    const limit = limits[name];
    const times = admitted.get(name);
    if (limit === undefined || times === undefined) return false;
    const now = performance.now();
    while (times.length > 0 && (times[0] ?? 0) <= now - limit.interval) times.shift();
    if (times.length >= limit.rate) return true;
    times.push(now);
    return false;
  };

  const record = (name: string, ms: number): void => {
    const histogram = latency.get(name);
    if (histogram === undefined) return;
    histogram.count++;
    histogram.sum += ms;
    for (const bucket of histogram.buckets) if (ms <= bucket.le) bucket.count++;
  };

  /** The handler of `dependency`'s server. */
  const handle = (dependency: string) => (request: IncomingMessage, response: ServerResponse): void => {
    // A request body (a payment's order) is not read, but drained, so the connection stays usable.
    request.resume();
    const [, name = '', id] = (request.url ?? '/').split('/');
    const condition = conditions.get(name);
    const count = counters.get(name);
    if (name !== dependency || condition === undefined || count === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`no dependency at ${request.url ?? '/'}\n`);
      return;
    }
    if (id === WARM_UP_ID) {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    count.requests++;
    if (overLimit(name)) {
      count.limited++;
      response.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' }).end('rate limit exceeded\n');
      return;
    }
    count.inFlight++;
    let finished = false;
    const finish = (outcome: 'ok' | 'errors' | 'unavailable' | 'dropped' | 'abandoned'): void => {
      if (finished) return;
      finished = true;
      count.inFlight--;
      count[outcome]++;
    };

    const roll = random();
    const errors = condition.errors ?? 0;
    const drops = condition.drops ?? 0;
    if (condition.outage === 'unavailable') {
      finish('unavailable');
      response.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('down for the demo\n');
    } else if (condition.outage === 'dropped' || (condition.outage === undefined && roll >= errors && roll < errors + drops)) {
      finish('dropped');
      request.socket.destroy();
    } else if (condition.outage === undefined && roll < errors) {
      finish('errors');
      response.writeHead(500, { 'content-type': 'text/plain' }).end('internal error for the demo\n');
    } else {
      // Answers after a while, or never ('hanging'). Either way, a client that gives up
      // closes the connection, and the pending answer goes with it: no timer left behind.
      const { spike, tail } = condition;
      const inTail = tail !== undefined && count.requests % tail.every === 0;
      const delay =
        condition.outage === 'hanging'
          ? undefined
          : between(inTail ? tail.latency : spike !== undefined && random() < spike.share ? spike.latency : condition.latency);
      if (delay !== undefined) record(name, delay);
      const timer =
        delay === undefined
          ? undefined
          : setTimeout(() => {
              finish('ok');
              response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ dependency: name, path: request.url }));
            }, delay);
      response.once('close', () => {
        clearTimeout(timer);
        finish('abandoned');
      });
    }
  };

  const listen = async (dependency: string): Promise<Server> => {
    const server = createServer(handle(dependency));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    return server;
  };
  const servers = new Map<string, Server>();
  try {
    for (const name of dependencies) servers.set(name, await listen(name));
  } catch (error) {
    await closeAll([...servers.values()]);
    throw error;
  }
  const origins = new Map([...servers].map(([name, server]) => [name, `http://127.0.0.1:${(server.address() as AddressInfo).port}`]));

  return {
    origins,
    counters,
    latency,
    set(dependency, condition) {
      if (!conditions.has(dependency)) throw new RangeError(`upstream.set: unknown dependency ${JSON.stringify(dependency)}`);
      conditions.set(dependency, condition);
    },
    resetCounters() {
      for (const count of counters.values()) Object.assign(count, { requests: count.inFlight, ok: 0, errors: 0, unavailable: 0, limited: 0, dropped: 0, abandoned: 0 });
      for (const histogram of latency.values()) {
        histogram.count = 0;
        histogram.sum = 0;
        for (const bucket of histogram.buckets) bucket.count = 0;
      }
      for (const times of admitted.values()) times.length = 0;
    },
    close() {
      return closeAll([...servers.values()]);
    },
  };
}

/** Closes `servers`, ending every open request and connection; resolves once all are closed. */
async function closeAll(servers: readonly Server[]): Promise<void> {
  const closed = servers.map((server) => new Promise<void>((resolve, reject) => server.close((error) => (error === undefined ? resolve() : reject(error)))));
  // Idle keep-alive sockets and hanging requests would otherwise hold the servers open.
  for (const server of servers) server.closeAllConnections();
  await Promise.all(closed);
}
