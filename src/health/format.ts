/**
 * What both HTTP handlers share: routing a path to an endpoint, choosing the body format from
 * `Accept`, and building status, headers and body. The handlers only adapt it to `node:http`
 * and to `Request`/`Response`.
 */
import type { HealthMonitor } from './monitor.js';
import type { CheckResult, CheckStatus, HealthStatus, ReadinessReport } from './types.js';
import { requestPath } from '../shared/http-path.js';
import { synchronousAnswer } from '../shared/report.js';
import * as validate from './options.js';

/** The three endpoints a health handler serves. */
export type HealthEndpoint = 'health' | 'ready' | 'live';

/** The path of each endpoint; `false` when the endpoint is switched off. */
export interface HealthPaths {
  /** The full report of every check ({@link HealthMonitor.check}). */
  readonly health: string | false;
  /** Readiness ({@link HealthMonitor.ready}), 503 while not ready. */
  readonly ready: string | false;
  /** Liveness ({@link HealthMonitor.live}). */
  readonly live: string | false;
}

/** Options shared by `nodeHealthHandler` and `fetchHealthHandler`; `Req` is the request type each receives. */
export interface HealthHandlerOptions<Req> {
  /**
   * The path of each endpoint (`health`, `ready`, `live`, as in {@link HealthPaths}), matched
   * against the request's path (a query string is ignored, and so is one trailing slash);
   * `false` switches an endpoint off.
   * @default { health: '/health', ready: '/ready', live: '/live' }
   */
  paths?: { health?: string | false | undefined; ready?: string | false | undefined; live?: string | false | undefined } | undefined;
  /**
   * Whether bodies carry each check's error text, whether it is critical and its details
   * (a breaker's state). Off by default: error text can hold hostnames, usernames and
   * connection strings. Pass a function to decide per request (an internal network, a
   * token); if it throws, the body stays terse and the error is reported.
   * @default false
   */
  verbose?: boolean | ((request: Req) => boolean) | undefined;
}

/** What a handler sends: the body is dropped for `HEAD`. */
export interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const DEFAULT_PATHS: HealthPaths = { health: '/health', ready: '/ready', live: '/live' };
const ENDPOINTS: readonly HealthEndpoint[] = ['health', 'ready', 'live'];
const HANDLER_OPTIONS = ['paths', 'verbose'] as const;
const JSON_TYPE = 'application/json; charset=utf-8';
const HEALTH_JSON_TYPE = 'application/health+json';
const ALLOWED_METHODS = 'GET, HEAD';

const CHECK_STATUS_FOR: Readonly<Record<HealthStatus, CheckStatus>> = { healthy: 'pass', degraded: 'warn', unhealthy: 'fail' };

/** Checks a handler's arguments once, when it is built. */
export function handlerSettings<Req>(
  handler: string,
  monitor: HealthMonitor,
  options: HealthHandlerOptions<Req> | undefined,
): { paths: HealthPaths; verbose: boolean | ((request: Req) => boolean) } {
  const candidate = monitor as Partial<Record<'check' | 'ready' | 'live', unknown>> | null;
  if (
    typeof candidate !== 'object' || candidate === null ||
    typeof candidate.check !== 'function' || typeof candidate.ready !== 'function' || typeof candidate.live !== 'function'
  ) {
    throw new TypeError(`${handler}: the first argument must be a HealthMonitor, got ${validate.show(monitor)}`);
  }
  const opts = validate.options(handler, options, HANDLER_OPTIONS);
  const verbose = opts.verbose ?? false;
  if (typeof verbose !== 'boolean' && typeof verbose !== 'function') {
    throw new TypeError(`${handler} verbose must be true, false or a function of the request, got ${validate.show(verbose)}`);
  }
  return { paths: resolvePaths(handler, opts.paths), verbose };
}

function resolvePaths(handler: string, given: HealthHandlerOptions<unknown>['paths']): HealthPaths {
  const opts = validate.options(`${handler} paths`, given, ENDPOINTS);
  const paths: Record<HealthEndpoint, string | false> = { ...DEFAULT_PATHS };
  for (const endpoint of ENDPOINTS) {
    const path = opts[endpoint];
    if (path === undefined) continue;
    if (path === false) {
      paths[endpoint] = false;
      continue;
    }
    if (typeof path !== 'string') throw new TypeError(`${handler} paths.${endpoint} must be a path string or false, got ${validate.show(path)}`);
    if (!path.startsWith('/') || /[?#\s]/.test(path)) {
      throw new RangeError(`${handler} paths.${endpoint} must start with "/" and hold no query, fragment or space, got ${validate.show(path)}`);
    }
    paths[endpoint] = withoutTrailingSlash(path);
  }
  const used = ENDPOINTS.map((endpoint) => paths[endpoint]).filter((path): path is string => path !== false);
  if (used.length === 0) throw new RangeError(`${handler} paths: every endpoint is switched off`);
  const duplicate = used.find((path, i) => used.indexOf(path) !== i);
  if (duplicate !== undefined) throw new RangeError(`${handler} paths: two endpoints share the path ${JSON.stringify(duplicate)}`);
  return Object.freeze(paths);
}

function withoutTrailingSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** The path of a request target without its query, fragment and one trailing slash; also for an absolute-form target (`http://host/health`). */
export function pathOf(target: string): string {
  // A target that is neither a path nor a URL comes back whole: trimmed or not, no endpoint
  // (each starts with "/") matches it.
  return withoutTrailingSlash(requestPath(target));
}

/** The endpoint a path names, if any. */
export function endpointFor(paths: HealthPaths, path: string): HealthEndpoint | undefined {
  return ENDPOINTS.find((endpoint) => paths[endpoint] === path);
}

/** Whether `Accept` asks for `application/health+json` (and does not refuse it with `q=0`). */
function wantsHealthJson(accept: string | readonly string[] | null | undefined): boolean {
  if (accept === undefined || accept === null) return false;
  const ranges = (typeof accept === 'string' ? accept : accept.join(',')).split(',');
  return ranges.some((range) => {
    const [type, ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    if (type !== HEALTH_JSON_TYPE) return false;
    const q = params.find((param) => param.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** Decides `verbose` for one request; a predicate that throws counts as `false`, and is reported. */
function isVerbose<Req>(verbose: boolean | ((request: Req) => boolean), request: Req): boolean {
  if (typeof verbose === 'boolean') return verbose;
  try {
    return synchronousAnswer('the verbose predicate', verbose(request)) === true;
  } catch (error) {
    validate.reportError('the verbose predicate', error);
    return false;
  }
}

/** The answer to a method other than GET and HEAD on a health path. */
function methodNotAllowed(): Answer {
  return {
    status: 405,
    headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store', vary: 'Accept', allow: ALLOWED_METHODS },
    body: '{"error":"method not allowed"}',
  };
}

/** The answer for an unknown path when there is no `next` to hand the request to. */
export function notFound(): Answer {
  return { status: 404, headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store', vary: 'Accept' }, body: '{"error":"not found"}' };
}

/** The answer when building one threw and there is no framework to hand the error to. */
export function internalError(): Answer {
  return { status: 500, headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store', vary: 'Accept' }, body: '{"error":"internal error"}' };
}

/**
 * The answer to a request on a health path: 405 for a method other than GET and HEAD, else
 * what the endpoint reports. `verbose` is decided only for a method that gets a report, so a
 * predicate never sees a request that is refused anyway.
 */
export async function answerRequest<Req extends { readonly method?: string | undefined }>(
  monitor: HealthMonitor,
  endpoint: HealthEndpoint,
  request: Req,
  accept: string | readonly string[] | null | undefined,
  verbose: boolean | ((request: Req) => boolean),
): Promise<Answer> {
  if (!isAllowedMethod(request.method)) return methodNotAllowed();
  return answer(monitor, endpoint, wantsHealthJson(accept), isVerbose(verbose, request));
}

function isAllowedMethod(method: string | undefined): boolean {
  // node:http leaves the method absent only for a response's message, never a request's;
  // treat it as GET rather than refuse a request it cannot describe.
  return method === undefined || method === 'GET' || method === 'HEAD';
}

/** Runs what the endpoint needs and builds the answer. */
async function answer(monitor: HealthMonitor, endpoint: HealthEndpoint, healthJson: boolean, verbose: boolean): Promise<Answer> {
  switch (endpoint) {
    case 'live': {
      const live = monitor.live();
      return reply(200, healthJson, healthJson ? { status: 'pass' } : { alive: live.alive });
    }
    case 'ready': {
      const report = await monitor.ready();
      return reply(report.ready ? 200 : 503, healthJson, readinessBody(report, healthJson, verbose));
    }
    case 'health': {
      const report = await monitor.check();
      const checks = Object.entries(report.checks);
      const body = healthJson
        ? { status: CHECK_STATUS_FOR[report.status], checks: healthJsonChecks(checks, verbose) }
        : { status: report.status, checks: jsonChecks(checks, verbose) };
      return reply(report.status === 'unhealthy' ? 503 : 200, healthJson, body);
    }
  }
}

function readinessBody(report: ReadinessReport, healthJson: boolean, verbose: boolean): Record<string, unknown> {
  const checks = Object.entries(report.checks);
  if (!healthJson) {
    // No reason when ready: JSON leaves an undefined value out.
    return { ready: report.ready, reason: report.reason, checks: jsonChecks(checks, verbose) };
  }
  const warns = checks.some(([, result]) => result.status === 'warn');
  const status: CheckStatus = !report.ready ? 'fail' : warns ? 'warn' : 'pass';
  const body: Record<string, unknown> = { status };
  if (report.reason !== undefined) body['notes'] = [report.reason];
  body['checks'] = healthJsonChecks(checks, verbose);
  return body;
}

/** Plain JSON: each check's status and duration; verbose adds what it is and what went wrong. */
function jsonChecks(checks: readonly [string, CheckResult][], verbose: boolean): Record<string, unknown> {
  return Object.fromEntries(
    checks.map(([name, result]) => {
      const shown: Record<string, unknown> = { status: result.status, durationMs: result.durationMs };
      if (verbose) {
        shown['critical'] = result.critical;
        shown['error'] = result.error; // none for a pass: JSON leaves an undefined value out
        if (result.timedOut === true) shown['timedOut'] = true;
        if (serializable(result.details)) shown['details'] = result.details;
      }
      return [name, shown];
    }),
  );
}

/**
 * The `checks` object of draft-inadarei-api-health-check: each key holds an array of one
 * object, with the duration as `observedValue` in `ms` and `time` as an ISO 8601 date; the
 * error text goes in `output` (verbose only; the draft omits it for `pass`).
 */
function healthJsonChecks(checks: readonly [string, CheckResult][], verbose: boolean): Record<string, unknown> {
  return Object.fromEntries(
    checks.map(([name, result]) => {
      // An undefined value (`time` of an invalid date, `output` of a pass, which has no error) is left out of the JSON.
      const shown: Record<string, unknown> = { status: result.status, observedValue: result.durationMs, observedUnit: 'ms', time: isoTime(result.checkedAt) };
      if (verbose) {
        shown['output'] = result.error;
        shown['critical'] = result.critical;
        if (serializable(result.details)) shown['details'] = result.details;
      }
      return [name, [shown]];
    }),
  );
}

function isoTime(epochMs: number): string | undefined {
  const date = new Date(epochMs);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function reply(status: number, healthJson: boolean, body: Record<string, unknown>): Answer {
  return {
    status,
    headers: { 'content-type': healthJson ? HEALTH_JSON_TYPE : JSON_TYPE, 'cache-control': 'no-store', vary: 'Accept' },
    body: JSON.stringify(body),
  };
}

/**
 * Whether JSON can hold a value (`undefined` too: it is left out). A breaker's `stats()` may
 * return what it cannot (a BigInt, a cycle): then its details are left out, and the probe
 * still answers.
 */
function serializable(value: unknown): boolean {
  try {
    JSON.stringify(value);
    return true;
  } catch {
    return false;
  }
}
