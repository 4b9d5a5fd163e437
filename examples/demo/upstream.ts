/**
 * The demo's upstream: one real HTTP server on 127.0.0.1 (a random free port) that plays
 * several dependencies at once, one path each (`GET /payments/…`, `GET /inventory/…`), and
 * misbehaves the way a script tells it to. It keeps its own counters, so the dashboard can
 * show what the server really saw next to what the callers saw through their policies.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
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
  /** Connections dropped on purpose, without an answer. */
  dropped: number;
  /** Requests the client gave up on before the answer was sent (its timeout aborted them). */
  abandoned: number;
  /** Requests received and not finished yet. */
  inFlight: number;
}

/** A running upstream. */
export interface Upstream {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Live counters per dependency name. */
  readonly counters: ReadonlyMap<string, Readonly<UpstreamCounters>>;
  /** From now on, `dependency` behaves as `condition` says. */
  set(dependency: string, condition: Condition): void;
  /** Starts every counter from zero again (requests in flight stay counted as such). */
  resetCounters(): void;
  /** Stops listening, ends every open request and connection, and resolves once closed. */
  close(): Promise<void>;
}

const HEALTHY: Condition = { latency: [5, 20] };

/** Counters of a dependency that has seen nothing yet. */
export function zeroCounters(): UpstreamCounters {
  return { requests: 0, ok: 0, errors: 0, unavailable: 0, dropped: 0, abandoned: 0, inFlight: 0 };
}

/** Starts the upstream; `dependencies` are the paths it answers, each healthy to begin with. */
export async function startUpstream(dependencies: readonly string[], random: () => number = Math.random): Promise<Upstream> {
  const conditions = new Map<string, Condition>(dependencies.map((name) => [name, HEALTHY]));
  const counters = new Map<string, UpstreamCounters>(dependencies.map((name) => [name, zeroCounters()]));
  const between = ([min, max]: readonly [number, number]): number => min + random() * (max - min);

  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const name = (request.url ?? '/').split('/')[1] ?? '';
    const condition = conditions.get(name);
    const count = counters.get(name);
    if (condition === undefined || count === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`no dependency at ${request.url ?? '/'}\n`);
      return;
    }
    count.requests++;
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
      const spike = condition.spike;
      const delay = condition.outage === 'hanging' ? undefined : between(spike !== undefined && random() < spike.share ? spike.latency : condition.latency);
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

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    counters,
    set(dependency, condition) {
      if (!conditions.has(dependency)) throw new RangeError(`upstream.set: unknown dependency ${JSON.stringify(dependency)}`);
      conditions.set(dependency, condition);
    },
    resetCounters() {
      for (const count of counters.values()) Object.assign(count, { requests: count.inFlight, ok: 0, errors: 0, unavailable: 0, dropped: 0, abandoned: 0 });
    },
    close() {
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error === undefined ? resolve() : reject(error))));
      // Idle keep-alive sockets and hanging requests would otherwise hold the server open.
      server.closeAllConnections();
      return closed;
    },
  };
}
