import {
  answerRequest,
  endpointFor,
  handlerSettings,
  internalError,
  pathOf,
  type Answer,
  type HealthHandlerOptions,
  type HealthPaths,
} from './format.js';
import type { HealthMonitor } from './monitor.js';
import { reportError } from './options.js';

/**
 * A `(Request) => Promise<Response | undefined>` handler: `undefined` for a path that is not a
 * health endpoint, so the caller hands the request on. Its promise never rejects.
 */
export interface FetchHealthHandler {
  (request: Request): Promise<Response | undefined>;
  /** The paths it answers (`false`: switched off). */
  readonly paths: HealthPaths;
}

/**
 * Serves a {@link HealthMonitor} with the web's `Request` and `Response`, for Hono, Bun,
 * Deno, Next.js route handlers and workers. Same endpoints, statuses, headers and bodies as
 * `nodeHealthHandler`; a path that is not a health endpoint resolves to `undefined`.
 *
 * @example
 * ```ts
 * const health = fetchHealthHandler(monitor);
 * Bun.serve({ fetch: async (request) => (await health(request)) ?? app.fetch(request) });
 * // Next.js, app/health/route.ts:
 * export const GET = async (request: Request) => (await health(request)) ?? new Response(null, { status: 404 });
 * ```
 */
export function fetchHealthHandler(monitor: HealthMonitor, options?: HealthHandlerOptions<Request>): FetchHealthHandler {
  const { paths, verbose } = handlerSettings('fetchHealthHandler', monitor, options);
  const handler = async (request: Request): Promise<Response | undefined> => {
    const endpoint = endpointFor(paths, pathOf(request.url));
    if (endpoint === undefined) return undefined;
    const head = request.method === 'HEAD';
    try {
      return toResponse(await answerRequest(monitor, endpoint, request, request.headers.get('accept'), verbose), head);
    } catch (error) {
      reportError('fetchHealthHandler', error);
      return toResponse(internalError(), head);
    }
  };
  return Object.assign(handler, { paths });
}

const utf8 = new TextEncoder();

function toResponse(result: Answer, head: boolean): Response {
  if (!head) return new Response(result.body, { status: result.status, headers: result.headers });
  // The length GET would send, as HTTP asks of HEAD: for a null body Bun.serve and Deno.serve
  // would send `content-length: 0` themselves.
  const length = String(utf8.encode(result.body).byteLength);
  return new Response(null, { status: result.status, headers: { ...result.headers, 'content-length': length } });
}
