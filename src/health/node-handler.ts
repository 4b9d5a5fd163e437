import {
  answerRequest,
  endpointFor,
  handlerSettings,
  internalError,
  notFound,
  pathOf,
  type Answer,
  type HealthEndpoint,
  type HealthHandlerOptions,
  type HealthPaths,
} from './format.js';
import type { HealthMonitor } from './monitor.js';
import { reportError } from './options.js';

/**
 * What the handler reads of a request: the shape of `node:http`'s `IncomingMessage`, which
 * Express, Connect and Fastify (`request.raw`) hand over too.
 */
export interface NodeHealthRequest {
  /** The method: `HEAD` is answered without a body. */
  readonly method?: string | undefined;
  /** The request target, relative to the mount point under Express and Connect. */
  readonly url?: string | undefined;
  /** Express's full request target, for a handler mounted at a health path (`app.use('/health', handler)`). */
  readonly originalUrl?: string | undefined;
  /** The headers, by lowercase name: `accept` chooses between `application/health+json` and plain JSON. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** What the handler uses of a response: the shape of `node:http`'s `ServerResponse`. */
export interface NodeHealthResponse {
  /** Set to the answer's status. */
  statusCode: number;
  /** `true` when someone else already answered: the handler then leaves the response alone. */
  readonly headersSent?: boolean | undefined;
  /** Sets one header of the answer. */
  setHeader(name: string, value: string): unknown;
  /** Ends the answer, with its body (none for `HEAD`). */
  end(chunk?: string): unknown;
}

/** Express's and Connect's `next`: called for a path that is not a health endpoint, or with an error. */
export type NodeNextFunction = (error?: unknown) => void;

/**
 * A `(req, res, next?)` handler for `node:http`, Express, Connect, and Fastify (through
 * `request.raw` and `reply.raw`). Its promise never rejects; `next()` for another path is
 * called synchronously, so what it throws reaches the caller as if it were called directly.
 */
export interface NodeHealthHandler<Req extends NodeHealthRequest = NodeHealthRequest> {
  (request: Req, response: NodeHealthResponse, next?: NodeNextFunction): Promise<void>;
  /** The paths it answers (`false`: switched off), for frameworks that register routes one by one. */
  readonly paths: HealthPaths;
}

/**
 * Serves a {@link HealthMonitor} to `node:http`, Express and Connect, as a `(req, res, next?)`
 * handler: `/health` (200 healthy or degraded, 503 unhealthy), `/ready` (200 or 503) and
 * `/live` (200), JSON with `Cache-Control: no-store`, the IETF health+json format when the
 * request's `Accept` asks for `application/health+json`, headers without a body for `HEAD`,
 * 405 for other methods. Any other path goes to `next()`, or gets a 404 without `next`.
 * Bodies name each check with its status and duration only, unless `verbose`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * const health = nodeHealthHandler(monitor);
 * createServer((req, res) => void health(req, res, () => app(req, res))).listen(8080);
 * // Express and Connect: app.use(nodeHealthHandler(monitor));
 * ```
 */
export function nodeHealthHandler<Req extends NodeHealthRequest = NodeHealthRequest>(
  monitor: HealthMonitor,
  options?: HealthHandlerOptions<Req>,
): NodeHealthHandler<Req> {
  const { paths, verbose } = handlerSettings('nodeHealthHandler', monitor, options);
  const serve = async (request: Req, response: NodeHealthResponse, endpoint: HealthEndpoint | undefined, next?: NodeNextFunction): Promise<void> => {
    const head = request.method === 'HEAD';
    try {
      if (endpoint === undefined) {
        send(response, notFound(), head);
        return;
      }
      send(response, await answerRequest(monitor, endpoint, request, request.headers['accept'], verbose), head);
    } catch (error) {
      // A server ignores a listener's promise: a rejection here would go unhandled. Hand the
      // error to the framework when it gave us a `next`, else report it and answer 500.
      if (next !== undefined) {
        next(error);
        return;
      }
      reportError('nodeHealthHandler', error);
      try {
        send(response, internalError(), head);
      } catch {
        // The response is gone (socket closed, headers sent): nothing is left to answer.
      }
    }
  };
  const handler = (request: Req, response: NodeHealthResponse, next?: NodeNextFunction): Promise<void> => {
    const endpoint = endpointOf(paths, request);
    if (endpoint === undefined && next !== undefined) {
      // Called synchronously and outside any catch: what the rest of the app throws reaches
      // the server as if this handler were not there, and the app never runs twice.
      next();
      return Promise.resolve();
    }
    return serve(request, response, endpoint, next);
  };
  return Object.assign(handler, { paths });
}

/**
 * The endpoint a request names. Express strips the mount path from `url`: mounted under a
 * prefix (`app.use('/ops', handler)`) the health paths are relative to it, and mounted at a
 * health path itself (`app.use('/health', handler)`) `originalUrl` still names it.
 */
function endpointOf(paths: HealthPaths, request: NodeHealthRequest): HealthEndpoint | undefined {
  const url = request.url ?? '/';
  const endpoint = endpointFor(paths, pathOf(url));
  if (endpoint !== undefined || request.originalUrl === undefined || request.originalUrl === url) return endpoint;
  return endpointFor(paths, pathOf(request.originalUrl));
}

const utf8 = new TextEncoder();

function send(response: NodeHealthResponse, result: Answer, head: boolean): void {
  // Someone else already answered (an earlier middleware, a timeout handler): theirs stands.
  if (response.headersSent === true) return;
  response.statusCode = result.status;
  for (const [name, value] of Object.entries(result.headers)) response.setHeader(name, value);
  // Also on HEAD: the length the GET body would have, as HTTP asks.
  response.setHeader('content-length', String(utf8.encode(result.body).byteLength));
  if (head) response.end();
  else response.end(result.body);
}
