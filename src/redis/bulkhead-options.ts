/** The options and events of the fleet-wide bulkhead, and how their names are checked. */
import type { BulkheadRejectedError, BulkheadRejectionReason } from 'bulwark';
import type * as validate from '../shared/validate.js';
import type { RedisStoreError } from './store.js';

/** Options of {@link RedisBulkhead}. */
export interface RedisBulkheadOptions {
  /** The cap's name, shared by every replica that shares the cap: its key is `{bulwark:<name>}:slots`. Required. */
  name: string;
  /** How many calls may run at once across the fleet: a whole number ≥ 1. Required. */
  maxConcurrent: number;
  /**
   * How many calls of this replica may wait for a slot; beyond that a call is rejected at once.
   * A waiting call asks Redis again whenever this replica frees a slot, and every `retryInterval`.
   * @default 0
   */
  maxQueue?: number | undefined;
  /**
   * How long, in ms, a call may wait for a slot before it is rejected (`'queue-timeout'`).
   * @default Infinity
   */
  queueTimeout?: number | undefined;
  /**
   * How often, in ms, this replica's waiting calls ask Redis for a slot another replica freed.
   * @default 20
   */
  retryInterval?: number | undefined;
  /**
   * How long, in ms, a slot stays taken without renewal: a replica renews its leases every
   * `leaseTime / 3` while their calls run, so only a replica that died (or lost Redis) lets them
   * expire, and its slots come back after at most this long.
   * @default 10_000
   */
  leaseTime?: number | undefined;
  /**
   * How long, in ms, a call waits on Redis at most; beyond it the store counts as down.
   * @default 100
   */
  timeout?: number | undefined;
  /**
   * While Redis is down, one call per `probeInterval` ms asks it again; its answer brings sharing back.
   * @default 1_000
   */
  probeInterval?: number | undefined;
  /**
   * `false`: while Redis is down a local `Bulkhead` of the same options decides (each replica
   * then allows `maxConcurrent` on its own). `true`: calls are refused with `RedisStoreError`.
   * @default false
   */
  failClosed?: boolean | undefined;
}

/** Events of a {@link RedisBulkhead}. */
export interface RedisBulkheadEvents {
  /** A call was refused with `error`, for `reason`: no slot and no queue place, its wait passed `queueTimeout`, or the store was down with `failClosed`. */
  rejected: { readonly error: BulkheadRejectedError | RedisStoreError; readonly reason: BulkheadRejectionReason | 'store-down' };
  /** A call to Redis failed or timed out, with `error`. */
  storeError: { readonly error: RedisStoreError };
  /** Redis stopped answering (`error`, the failure that showed it): slots are local (or refused, with `failClosed`) until `storeUp`. */
  storeDown: { readonly error: RedisStoreError };
  /** Redis answers again: the cap is shared again. */
  storeUp: Record<string, never>;
}

export const EVENT_NAMES: readonly (keyof RedisBulkheadEvents)[] = ['rejected', 'storeError', 'storeDown', 'storeUp'];
export const OPTION_KEYS: readonly (keyof RedisBulkheadOptions)[] = ['name', 'maxConcurrent', 'maxQueue', 'queueTimeout', 'retryInterval', 'leaseTime', 'timeout', 'probeInterval', 'failClosed'];
export const PEER_NAMES: validate.PeerNames = {
  concurrency: '"maxConcurrent"',
  limit: '"maxConcurrent"',
  maxConcurrentCalls: '"maxConcurrent"',
  permitLimit: '"maxConcurrent"',
  maxConcurrentLeases: '"maxConcurrent"',
  queueLimit: '"maxQueue"',
  maxWait: '"queueTimeout"',
  maxWaitDuration: '"queueTimeout"',
  ttl: '"leaseTime"',
  leaseDuration: '"leaseTime"',
  clock: 'none: time is the Redis server\'s',
};
