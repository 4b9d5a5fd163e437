/**
 * A misbehaving HTTP server on 127.0.0.1 for bulwark/fetch's tests: each request gets the next
 * step of a script (or the server's default answer): a status with headers and a body, a
 * `Retry-After` in seconds or as an HTTP date, a hang, a connection reset, a slow body. It
 * records every request (method, path, headers, body, arrival time) and counts the sockets
 * open now, so a test can see a connection held by a body nobody cancelled.
 *
 * Times are read from `now` (a test's clock, so a `Retry-After` and the client's waits are
 * measured on one clock); the `Date` header is written from it too.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the server does with one request. */
export type Step =
  | {
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      /** A body: text, or a number of bytes (`x` repeated). */
      readonly body?: string | number;
      /** `Retry-After` in seconds (a number), or as the HTTP date that many seconds from now (`{ date: seconds }`), or as written. */
      readonly retryAfter?: number | { readonly date: number } | string;
      /** The `Date` header, offset by this many ms from `now` (a server whose clock is off); `false` to send none. */
      readonly dateOffset?: number | false;
      /** Wait this many real ms before answering. */
      readonly after?: number;
    }
  | { readonly hang: true }
  | { readonly reset: true }
  | { readonly slowBody: { readonly chunks: number; readonly every: number; readonly status?: number } };

/** A request as the server saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** When it arrived, on the server's `now`. */
  readonly at: number;
  /** For a step with `retryAfter`: the earliest time (on `now`) the client may come back. */
  notBefore?: number;
  /** True once the connection the request came on has closed. */
  readonly connectionClosed: boolean;
}

export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Steps for the next requests, in order; once they are used up, `otherwise` answers. */
  script(...steps: Step[]): void;
  /** The answer when no scripted step is left: a step, or a function of the request and its index. */
  otherwise(step: Step | ((request: SeenRequest, index: number) => Step)): void;
  readonly requests: SeenRequest[];
  /** Forgets the steps left and the requests seen; the default answer is 200 `ok` again. */
  reset(): void;
  /** Sockets open now. */
  openSockets(): number;
  /** Sockets opened since the server started. */
  socketsOpened(): number;
  close(): Promise<void>;
}

const OK: Step = { status: 200, body: 'ok' };

export async function startServer(now: () => number = Date.now): Promise<TestServer> {
  const steps: Step[] = [];
  let fallback: Step | ((request: SeenRequest, index: number) => Step) = OK;
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let opened = 0;
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void, ms: number): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const socket = req.socket;
      const seen: SeenRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        at: now(),
        get connectionClosed() {
          return socket.destroyed || !sockets.has(socket);
        },
      };
      const index = requests.push(seen) - 1;
      const step = steps.shift() ?? (typeof fallback === 'function' ? fallback(seen, index) : fallback);
      play(step, seen, req, res);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket) => {
    opened++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  function play(step: Step, seen: SeenRequest, req: IncomingMessage, res: ServerResponse): void {
    if ('hang' in step) return;
    if ('reset' in step) {
      req.socket.destroy();
      return;
    }
    if ('slowBody' in step) {
      const { chunks, every, status = 200 } = step.slowBody;
      res.writeHead(status, { 'content-type': 'text/plain' });
      let sent = 0;
      const next = (): void => {
        if (res.destroyed) return;
        if (sent === chunks) {
          res.end();
          return;
        }
        sent++;
        res.write(`chunk ${sent}\n`);
        later(next, every);
      };
      next();
      return;
    }
    const answer = (): void => {
      if (res.destroyed) return;
      const at = now();
      // The Date header is the server's clock (`now`), or none: never Node's own.
      res.sendDate = false;
      const headers: Record<string, string> = { 'content-type': 'text/plain', ...step.headers };
      if (step.dateOffset !== false) headers['date'] = new Date(at + (step.dateOffset ?? 0)).toUTCString();
      if (step.retryAfter !== undefined) {
        if (typeof step.retryAfter === 'number') {
          headers['retry-after'] = String(step.retryAfter);
          seen.notBefore = at + step.retryAfter * 1_000;
        } else if (typeof step.retryAfter === 'object') {
          const offset = step.dateOffset === false ? 0 : (step.dateOffset ?? 0);
          headers['retry-after'] = new Date(at + offset + step.retryAfter.date * 1_000).toUTCString();
          // The moment this server's clock (off by `offset`) reads the date the header names.
          seen.notBefore = Date.parse(headers['retry-after']) - offset;
        } else {
          headers['retry-after'] = step.retryAfter;
        }
      }
      const body = typeof step.body === 'number' ? Buffer.alloc(step.body, 'x') : (step.body ?? '');
      headers['content-length'] = String(Buffer.byteLength(body));
      res.writeHead(step.status, headers);
      res.end(body);
    };
    if (step.after !== undefined) later(answer, step.after);
    else answer();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    script: (...more) => void steps.push(...more),
    otherwise: (step) => {
      fallback = step;
    },
    requests,
    reset: () => {
      steps.length = 0;
      requests.length = 0;
      fallback = OK;
    },
    openSockets: () => sockets.size,
    socketsOpened: () => opened,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A clock whose time runs `scale` times faster than real time, for a `Retry-After` of seconds
 * and timeouts of tens of seconds in a test of a few ms. Its timers never fire early on it:
 * each waits one real ms more than its share, since a Node timer may fire up to a millisecond
 * before its delay.
 */
export function fastClock(scale = 100): { now(): number; setTimeout(callback: () => void, ms: number): unknown; clearTimeout(handle: unknown): void } {
  const startReal = performance.now();
  const startVirtual = Date.now();
  return {
    now: () => startVirtual + (performance.now() - startReal) * scale,
    setTimeout: (callback, ms) => setTimeout(callback, Math.ceil(ms / scale) + 1),
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  };
}
