/**
 * The fleet-wide bulkhead's scripts: one sorted set per bulkhead name (`{bulwark:<name>}:slots`),
 * its members the lease ids of the calls holding a slot, each scored by its expiry in ms on the
 * server's clock (`TIME`). Every script first drops the leases that expired (a replica killed
 * with SIGKILL renews nothing: its slots come back once its leases run out).
 *
 * Acquire — ARGV: maxConcurrent, leaseTime (ms), lease id. Adds the lease when fewer than
 * `maxConcurrent` are held. Answer: `{ granted (1|0), the server's time (µs), leases held }`.
 * Release — ARGV: lease id. Answer: `{ removed (1|0), the server's time (µs) }`.
 * Renew — ARGV: leaseTime (ms), lease ids…. Moves the expiry of each lease still held (`XX`:
 * an expired one is not brought back). Answer: how many were renewed.
 * The key expires one lease time after its last change: an idle bulkhead leaves nothing behind.
 */
import type { Script } from './store.js';

const NOW = `
local t = redis.call('TIME')
local micros = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(micros / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
`;

export const ACQUIRE_SCRIPT: Script = {
  sha: undefined,
  source: `${NOW}
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then
  return { 0, micros, held }
end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease)
return { 1, micros, held + 1 }
`,
};

export const RELEASE_SCRIPT: Script = {
  sha: undefined,
  source: `${NOW}
return { redis.call('ZREM', KEYS[1], ARGV[1]), micros }
`,
};

export const RENEW_SCRIPT: Script = {
  sha: undefined,
  source: `${NOW}
local lease = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return renewed
`,
};

/** The key of a fleet-wide bulkhead: hash-tagged, so a cluster keeps it in one slot. */
export function slotsKey(name: string): string {
  return `{bulwark:${name}}:slots`;
}
