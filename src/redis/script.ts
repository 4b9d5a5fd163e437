/**
 * The shared rate limiter's scripts: one token bucket per limiter name in one hash
 * (`{bulwark:<name>}:rate`, fields `tokens` and `ts`), decided atomically on the server's clock
 * (`TIME`).
 *
 * Both take ARGV: rate, interval (ms), burst, maxWait (ms). The bucket holds up to `burst` tokens
 * and refills at `rate` per `interval`. A call takes one token. With fewer than one token, the
 * call may reserve the next one, letting the bucket go below zero, when it would be free within
 * `maxWait`; it then waits that long before it starts. Otherwise nothing changes and the call is
 * refused with the exact time until a token is free (after every reservation already made).
 *
 * `RATE_LIMIT_SCRIPT` decides one call. Answer: `{ granted (1|0), wait or retryAfter (µs), the
 * server's time of the permit (µs) }`, whole numbers (Lua numbers are truncated in a reply).
 *
 * `LEASE_SCRIPT` decides the calls of one replica that wait on the same round trip, and leases it
 * spare permits: ARGV 5 is how many calls wait, ARGV 6 how many permits to take beyond them, from
 * the tokens free now only (a spare permit is never reserved ahead). The calls take the free
 * tokens first; those left reserve the next tokens one by one, each within `maxWait`. Answer:
 * `{ permits free now (for the calls, then spare), retryAfter (µs) for the calls left over (0 if
 * none), the server's time (µs), the wait (µs) of each reservation in order… }`.
 *
 * The key expires once the bucket would be full again, so an idle limiter leaves nothing behind.
 */
import type { Script } from './store.js';

/** Reads the bucket, refilled up to `now` (µs): `tokens`, `ts`, `perToken` (µs), `burst`, `maxWait` (µs). */
const BUCKET = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local interval = tonumber(ARGV[2]) * 1000
local burst = tonumber(ARGV[3])
local maxWait = tonumber(ARGV[4]) * 1000
local perToken = interval / rate
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) / perToken)
  ts = now
end
`;

export const RATE_LIMIT_SCRIPT: Script = {
  sha: undefined,
  source: `${BUCKET}local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) * perToken)
end
if wait > maxWait then
  return { 0, wait, now }
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * perToken / 1000) + 1000)
return { 1, wait, now + wait }
`,
};

export const LEASE_SCRIPT: Script = {
  sha: undefined,
  source: `${BUCKET}local calls = tonumber(ARGV[5])
local taken = math.max(0, math.min(calls + tonumber(ARGV[6]), math.floor(tokens)))
tokens = tokens - taken
local answer = { taken, 0, now }
local waiting = calls - taken
while waiting > 0 do
  local wait = math.ceil((1 - tokens) * perToken)
  if wait > maxWait then
    answer[2] = wait
    break
  end
  tokens = tokens - 1
  waiting = waiting - 1
  answer[#answer + 1] = wait
end
if #answer > 3 or taken > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * perToken / 1000) + 1000)
end
return answer
`,
};

/** The key of a shared limiter: hash-tagged, so a cluster keeps each limiter in one slot. */
export function rateKey(name: string): string {
  return `{bulwark:${name}}:rate`;
}
