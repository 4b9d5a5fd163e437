import { requestPath } from '../shared/http-path.js';
import { options as checkOptions, path as checkPath, show } from './options.js';
import { PROMETHEUS_CONTENT_TYPE, checkSettings, render, takeSnapshot, type MetricsSource, type PrometheusOptions } from './render.js';

/** Options of {@link prometheusHandler} and {@link prometheusFetchHandler}. */
export interface PrometheusHandlerOptions extends PrometheusOptions {
  /**
   * The path the handler answers on; requests for any other path are passed on.
   * @default '/metrics'
   */
  path?: string | undefined;
}

/** The parts of a `node:http` `IncomingMessage` (or an Express/Connect request) the handler reads. */
export interface NodeRequestLike {
  /** The method: `GET` and `HEAD` are answered, others get 405. Absent, `GET`. */
  readonly method?: string | undefined;
  /** The request target, relative to the mount point under Express and Connect. */
  readonly url?: string | undefined;
  /** Express and Connect keep the full URL here when a router strips its mount path from `url`. */
  readonly originalUrl?: string | undefined;
}

/** The parts of a `node:http` `ServerResponse` (or an Express response) the handler uses. */
export interface NodeResponseLike {
  /** Set to the answer's status. */
  statusCode: number;
  /** Sets one header of the answer. */
  setHeader(name: string, value: string): unknown;
  /** Ends the answer, with its body (none for `HEAD`). */
  end(body?: string): unknown;
}

/** A `node:http` request listener that is also Express/Connect middleware. */
export type NodeMetricsHandler = (request: NodeRequestLike, response: NodeResponseLike, next?: (error?: unknown) => void) => void;

/** A handler for `fetch`-style servers: a `Response` for its path, `undefined` for any other. */
export type FetchMetricsHandler = (request: Request) => Response | undefined;

const HANDLER_OPTION_KEYS: readonly (keyof PrometheusHandlerOptions)[] = ['path', 'prefix', 'constantLabels'];

/**
 * Headers of every answer, errors included: a scrape reads the state of now (a cached copy
 * would show a breaker that already closed), and a cache must not serve one format for
 * another `Accept`.
 */
const EVERY_ANSWER: Readonly<Record<string, string>> = { 'cache-control': 'no-store', vary: 'Accept' };
const PLAIN_HEADERS: Readonly<Record<string, string>> = { 'content-type': 'text/plain; charset=utf-8', ...EVERY_ANSWER };
const ALLOW: Readonly<Record<string, string>> = { allow: 'GET, HEAD' };

/** Answers with a short plain-text body (404, 405, 500). */
function answerPlain(response: NodeResponseLike, status: number, body: string, extra?: Readonly<Record<string, string>>): void {
  response.statusCode = status;
  for (const [header, value] of Object.entries({ ...PLAIN_HEADERS, ...extra })) response.setHeader(header, value);
  response.end(body);
}


/** What a GET or HEAD on the path answers with. */
interface Exposition {
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

function prepare(name: string, options: PrometheusHandlerOptions | undefined): { path: string; expose: (source: MetricsSource) => Exposition } {
  const opts = checkOptions(name, options, HANDLER_OPTION_KEYS);
  const path = opts.path === undefined ? '/metrics' : checkPath(`${name} path`, opts.path);
  const settings = checkSettings(name, { prefix: opts.prefix, constantLabels: opts.constantLabels });
  const encoder = new TextEncoder();
  const expose = (source: MetricsSource): Exposition => {
    const body = render(settings, takeSnapshot(name, source));
    return {
      body,
      headers: {
        'content-type': PROMETHEUS_CONTENT_TYPE,
        // Sent for HEAD too: the length the GET would have.
        'content-length': String(encoder.encode(body).byteLength),
        ...EVERY_ANSWER,
      },
    };
  };
  return { path, expose };
}

/**
 * Serves `/metrics` from `node:http`, Express or Connect. A GET answers with
 * {@link renderPrometheus}'s text, a HEAD with the same headers and no body; another method
 * on the path gets `405` with `Allow: GET, HEAD`. A request for another path goes to `next()`
 * when there is one (middleware), else gets `404`. When rendering throws, the error goes to
 * `next(error)`, else the answer is `500` and the error is reported on `console.error`.
 *
 * Options are checked when the handler is made, so a bad prefix fails at startup, not at the
 * first scrape.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { prometheusHandler } from 'bulwark/prometheus';
 *
 * createServer(prometheusHandler(registry)).listen(9464);          // GET /metrics
 * app.use(prometheusHandler(registry, { path: '/internal/metrics' })); // Express: other paths go on
 * ```
 */
export function prometheusHandler(source: MetricsSource, options?: PrometheusHandlerOptions): NodeMetricsHandler {
  const name = 'prometheusHandler()';
  requireSource(name, source);
  const { path, expose } = prepare(name, options);
  return (request, response, next) => {
    // A router that strips its mount path (`app.use('/metrics', handler)`) leaves the full URL in originalUrl.
    const target = typeof request.originalUrl === 'string' ? request.originalUrl : request.url ?? '/';
    if (requestPath(target) !== path) {
      if (typeof next === 'function') return next();
      answerPlain(response, 404, 'Not Found\n');
      return;
    }
    const method = request.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      answerPlain(response, 405, 'Method Not Allowed\n', ALLOW);
      return;
    }
    let exposition: Exposition;
    try {
      exposition = expose(source);
    } catch (error) {
      if (typeof next === 'function') return next(error);
      console.error('bulwark: rendering the Prometheus metrics failed', error);
      answerPlain(response, 500, 'Internal Server Error\n');
      return;
    }
    response.statusCode = 200;
    for (const [header, value] of Object.entries(exposition.headers)) response.setHeader(header, value);
    if (method === 'HEAD') response.end();
    else response.end(exposition.body);
  };
}

/**
 * Serves `/metrics` from a `fetch`-style server (Bun, Deno, Hono, Cloudflare Workers, Node
 * with a fetch adapter). Returns a `Response` for a request to its path — the metrics for GET,
 * the same headers and no body for HEAD, `405` for another method — and `undefined` for any
 * other path, so it chains with `??`. It answers synchronously; when rendering throws, the
 * error is thrown to the caller (the server's own error handling answers `500`).
 *
 * @example
 * ```ts
 * import { prometheusFetchHandler } from 'bulwark/prometheus';
 *
 * const metrics = prometheusFetchHandler(registry);
 * Bun.serve({ fetch: (request) => metrics(request) ?? app.fetch(request) });
 * ```
 */
export function prometheusFetchHandler(source: MetricsSource, options?: PrometheusHandlerOptions): FetchMetricsHandler {
  const name = 'prometheusFetchHandler()';
  requireSource(name, source);
  const { path, expose } = prepare(name, options);
  return (request) => {
    if (new URL(request.url).pathname !== path) return undefined;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return new Response('Method Not Allowed\n', { status: 405, headers: { ...PLAIN_HEADERS, ...ALLOW } });
    }
    const { body, headers } = expose(source);
    return new Response(request.method === 'HEAD' ? null : body, { status: 200, headers });
  };
}

/** A handler serves a live registry: a snapshot alone would serve the same numbers forever. */
function requireSource(name: string, source: unknown): void {
  if (typeof source !== 'object' || source === null || typeof (source as Partial<MetricsSource>).snapshot !== 'function') {
    throw new TypeError(`${name}: expected a MetricsRegistry (an object with snapshot()), got ${show(source)}`);
  }
}
