/**
 * The one adapter between bulwark/redis and the client the service already has: ioredis,
 * iovalkey, node-redis v4+, or a cluster client of either family, recognised by shape (no
 * import, no runtime dependency). It runs a Lua script by EVALSHA, falls back to EVAL on
 * NOSCRIPT (a restarted server, a failed-over replica, a cluster node that never saw the
 * script: EVAL loads it there), and gives up on any call after `timeout` ms.
 */
import { ResilienceError, refusal } from 'bulwark';
import { show } from '../shared/show.js';

/** A Lua script of bulwark/redis: its source and, once computed, its SHA-1. */
export interface Script {
  readonly source: string;
  sha: string | undefined;
}

/**
 * What bulwark/redis needs of a client, recognised by shape. ioredis and iovalkey (and their
 * `Cluster`): `evalsha` and `eval`, called as `(sha or source, numKeys, ...keysAndArgs)`.
 * node-redis v4+ (`createClient`, `createCluster`): `evalSha` and `eval`, called as
 * `(sha or source, { keys, arguments })`.
 */
export type RedisClientLike =
  | { evalsha(sha: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>; eval(source: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown> }
  | { evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>; eval(source: string, options: { keys: string[]; arguments: string[] }): Promise<unknown> };

type Runner = (script: string, bySha: boolean, keys: string[], args: string[]) => Promise<unknown>;

/**
 * Redis did not answer within the store's `timeout`, or answered with an error other than a
 * script's own answer; what a fail-closed policy refuses calls with (a refusal: breakers do not
 * count it, retries do not repeat it).
 */
export class RedisStoreError extends ResilienceError {
  /** Always `'RedisStoreError'`. */
  override readonly name = 'RedisStoreError' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
refusal(RedisStoreError.prototype);

/** Turns a client into the one function the policies use, or throws a `TypeError` naming what it lacks. */
export function runnerOf(owner: string, client: unknown): Runner {
  const c = client as Record<string, unknown> | null;
  if (typeof c === 'object' && c !== null && typeof c['evalsha'] === 'function' && typeof c['eval'] === 'function') {
    const io = c as unknown as { evalsha: (...a: unknown[]) => Promise<unknown>; eval: (...a: unknown[]) => Promise<unknown> };
    return (script, bySha, keys, args) => (bySha ? io.evalsha(script, keys.length, ...keys, ...args) : io.eval(script, keys.length, ...keys, ...args));
  }
  if (typeof c === 'object' && c !== null && typeof c['evalSha'] === 'function' && typeof c['getSlotMaster'] === 'function' && typeof c['sendCommand'] === 'function') {
    // node-redis's cluster (v4) routes evalSha/eval by their first argument, the script, not by
    // the keys (`MOVED` from a node that does not own the slot, about one call in three): the
    // command is sent with its first key named, so it goes to the key's master.
    const cluster = c as unknown as { sendCommand: (firstKey: string, isReadonly: boolean, args: string[]) => Promise<unknown> };
    return (script, bySha, keys, args) => cluster.sendCommand(keys[0] as string, false, [bySha ? 'EVALSHA' : 'EVAL', script, String(keys.length), ...keys, ...args]);
  }
  if (typeof c === 'object' && c !== null && typeof c['evalSha'] === 'function' && typeof c['eval'] === 'function') {
    const nr = c as unknown as { evalSha: (...a: unknown[]) => Promise<unknown>; eval: (...a: unknown[]) => Promise<unknown> };
    return (script, bySha, keys, args) => (bySha ? nr.evalSha(script, { keys, arguments: args }) : nr.eval(script, { keys, arguments: args }));
  }
  throw new TypeError(
    `${owner} client must be an ioredis, iovalkey or node-redis (v4+) client or cluster (with evalsha/evalSha and eval), got ${show(client)}`,
  );
}

/** The script's SHA-1 in hex, by Web Crypto (Node 20, browsers, workers, Deno, Bun). */
async function sha1(source: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-1', new TextEncoder().encode(source));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function isNoScript(error: unknown): boolean {
  return String((error as { message?: unknown } | null | undefined)?.message).includes('NOSCRIPT');
}

/**
 * Runs `script` on `keys` (one hash slot) and `args`: EVALSHA, and on NOSCRIPT once more by
 * EVAL. Rejects with {@link RedisStoreError} when no answer came within `timeout` ms (the
 * client's own command goes on; its late answer goes to `onLate`, if given, else is dropped) or
 * the client failed.
 */
export async function runScript(
  run: Runner,
  script: Script,
  keys: string[],
  args: string[],
  timeout: number,
  owner: string,
  onLate?: (answer: unknown) => void,
): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const work = (async () => {
    const sha = (script.sha ??= await sha1(script.source));
    try {
      return await run(sha, true, keys, args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return await run(script.source, false, keys, args);
    }
  })();
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisStoreError(`${owner}: Redis did not answer within ${timeout} ms`)), timeout);
  });
  try {
    return await Promise.race([work, late]);
  } catch (error) {
    // A late failure of an abandoned command is no one's to handle; a late answer goes to `onLate`.
    work.then(onLate, () => {}).catch(() => {});
    if (error instanceof RedisStoreError) throw error;
    throw new RedisStoreError(`${owner}: Redis failed: ${error instanceof Error ? error.message : show(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
