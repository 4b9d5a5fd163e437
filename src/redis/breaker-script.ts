/**
 * The shared circuit breaker's script: the whole state of one breaker in one hash
 * (`{bulwark:<name>}:breaker`) and its half-open trial leases in one sorted set
 * (`{bulwark:<name>}:trials`), changed atomically on the server's clock. Replicas decide calls
 * locally from the state it answers; it is asked only to record outcomes (in batches), to lease
 * a half-open trial, to take a trial's outcome, and for manual changes.
 *
 * Hash fields: `state` (closed, open, half-open, isolated; absent: closed), `gen` (bumped at
 * every change: outcomes of calls admitted before it are ignored), `reason` (of the last
 * change), `cf` (consecutive failures), `co` (consecutive openings), `openedAt`, `retryAt` (when
 * the open circuit turns half-open), `bd` (this opening's break duration), `ft` (when the first
 * trial of this half-open period started), `ts` (trial successes), and the window: `wc`, `wf`,
 * `ws` (calls, failures, slow calls in it) and `w` (its contents: the last calls' codes, or
 * `index calls failures slow` per time bucket). Times are the server's, in ms.
 *
 * ARGV, for every operation: 1 op (`sync`, `trial`, `done`, `isolate`, `reset`),
 * 2 failureThreshold (-1: none), 3 minimumCalls, 4 failure-rate threshold (-1: none),
 * 5 slow-call-rate threshold (-1: none), 6 window kind (`none`, `calls`, `time`), 7 its size
 * (calls, or duration in ms), 8 buckets, 9 the break duration of the next opening,
 * 10 halfOpenMaxWait (-1: the default, max(break, 30 s); -2: none), 11 halfOpenMaxCalls,
 * 12 halfOpenSuccessThreshold. Then `sync`: 13 the generation the outcomes were admitted in,
 * 14 codes (count window), 15 calls, 16 failures, 17 slow calls, 18 failures since the batch's
 * last success (all of them when it has none), 19 1 when the batch holds a success.
 * `trial`: 13 the lease's id. `done`: 13 generation, 14 lease id, 15 outcome (`s` success,
 * `f` failure, `w` slow success, `a` abandoned: not counted, the place freed).
 *
 * Answer: `{ gen, state, retryAt, now, cf, co, wc, wf, ws, trials, ts, reason, granted,
 * openedAt }`; `granted` answers `trial` (1 a lease, 2 the circuit is closed again, 0 refused).
 * Every change is published on the channel named like the hash: `gen state retryAt reason co openedAt`.
 */
import type { Script } from './store.js';

export const BREAKER_SCRIPT: Script = {
  sha: undefined,
  source: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, trialsKey = KEYS[1], KEYS[2]
local op = ARGV[1]
local threshold = tonumber(ARGV[2])
local minimumCalls = tonumber(ARGV[3])
local rateThreshold = tonumber(ARGV[4])
local slowThreshold = tonumber(ARGV[5])
local windowKind = ARGV[6]
local windowSize = tonumber(ARGV[7])
local buckets = tonumber(ARGV[8])
local nextBreak = tonumber(ARGV[9])
local maxWait = tonumber(ARGV[10])
local maxTrials = tonumber(ARGV[11])
local successesToClose = tonumber(ARGV[12])

local h = redis.call('HMGET', key, 'state', 'gen', 'reason', 'cf', 'co', 'openedAt', 'retryAt', 'bd', 'ft', 'ts', 'wc', 'wf', 'ws', 'w')
local state = h[1] or 'closed'
-- A new state's generation starts at the server's time, so one made after a restart or expiry
-- is newer than any a replica still holds.
local gen = tonumber(h[2]) or now
local reason = h[3] or ''
local cf = tonumber(h[4]) or 0
local co = tonumber(h[5]) or 0
local openedAt = tonumber(h[6]) or -1
local retryAt = tonumber(h[7]) or 0
local bd = tonumber(h[8]) or 0
local ft = tonumber(h[9]) or -1
local ts = tonumber(h[10]) or 0
local wc = tonumber(h[11]) or 0
local wf = tonumber(h[12]) or 0
local ws = tonumber(h[13]) or 0
local w = h[14] or ''
local changed = false

local function clearWindow()
  wc, wf, ws, w = 0, 0, 0, ''
end

local function transition(to, why, at)
  redis.call('DEL', trialsKey)
  if to == 'closed' then
    cf, co, openedAt = 0, 0, -1
    clearWindow()
  end
  if state == to then return end
  if to == 'half-open' then
    ts, ft = 0, -1
  elseif to ~= 'closed' then
    openedAt = at
  end
  state, reason, gen, changed = to, why, gen + 1, true
  if to == 'open' then
    co = co + 1
    bd = nextBreak
    retryAt = at + bd
  end
end

local function halfOpenWait()
  if maxWait == -2 then return -1 end
  if maxWait == -1 then return math.max(bd, 30000) end
  return maxWait
end

local function catchUp()
  while true do
    if state == 'open' then
      if now < retryAt then return end
      transition('half-open', 'recovery-timeout', retryAt)
    elseif state == 'half-open' and ft >= 0 then
      local wait = halfOpenWait()
      if wait < 0 or now < ft + wait then return end
      transition('open', 'half-open-timeout', ft + wait)
    else
      return
    end
  end
end

local function countCodes(codes)
  local failures, slow = 0, 0
  for i = 1, #codes do
    local c = string.byte(codes, i) - 48
    if c % 2 == 1 then failures = failures + 1 end
    if c >= 2 then slow = slow + 1 end
  end
  return failures, slow
end

local function recordWindow(calls, failures, slow, codes)
  if windowKind == 'calls' then
    -- The codes, not the counts: a replica sends at most the window's worth of its latest calls.
    failures, slow = countCodes(codes)
    w = w .. codes
    wc, wf, ws = wc + #codes, wf + failures, ws + slow
    if #w > windowSize then
      local gone = string.sub(w, 1, #w - windowSize)
      local goneFailures, goneSlow = countCodes(gone)
      w = string.sub(w, #w - windowSize + 1)
      wc, wf, ws = #w, wf - goneFailures, ws - goneSlow
    end
  elseif windowKind == 'time' then
    local width = windowSize / buckets
    local current = math.floor(now / width)
    local kept = {}
    local found = false
    wc, wf, ws = 0, 0, 0
    for index, c, f, s in string.gmatch(w, '(%d+) (%d+) (%d+) (%d+)') do
      index, c, f, s = tonumber(index), tonumber(c), tonumber(f), tonumber(s)
      if index > current - buckets then
        if index == current then
          c, f, s, found = c + calls, f + failures, s + slow, true
        end
        kept[#kept + 1] = index .. ' ' .. c .. ' ' .. f .. ' ' .. s
        wc, wf, ws = wc + c, wf + f, ws + s
      end
    end
    if not found and calls > 0 then
      kept[#kept + 1] = current .. ' ' .. calls .. ' ' .. failures .. ' ' .. slow
      wc, wf, ws = wc + calls, wf + failures, ws + slow
    end
    w = table.concat(kept, ' ')
  end
end

local function rateReason()
  if windowKind == 'none' or wc < minimumCalls or wc == 0 then return nil end
  if rateThreshold >= 0 and wf / wc >= rateThreshold then return 'failure-rate' end
  if slowThreshold >= 0 and ws / wc >= slowThreshold then return 'slow-call-rate' end
  return nil
end

catchUp()
local granted = 0

if op == 'sync' then
  if state == 'closed' and tonumber(ARGV[13]) == gen then
    local calls, failures, slow = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
    if ARGV[19] == '1' then cf = tonumber(ARGV[18]) else cf = cf + tonumber(ARGV[18]) end
    recordWindow(calls, failures, slow, ARGV[14])
    if threshold >= 0 and cf >= threshold and failures > 0 then
      transition('open', 'failure-threshold', now)
    else
      local why = rateReason()
      if why then transition('open', why, now) end
    end
  end
elseif op == 'trial' then
  if state == 'closed' then
    granted = 2
  elseif state == 'half-open' then
    redis.call('ZREMRANGEBYSCORE', trialsKey, '-inf', now)
    if redis.call('ZCARD', trialsKey) < maxTrials then
      if ft < 0 then ft = now end
      local wait = halfOpenWait()
      if wait < 0 then wait = 3600000 end
      redis.call('ZADD', trialsKey, ft + wait, ARGV[13])
      redis.call('PEXPIREAT', trialsKey, ft + wait)
      granted = 1
    end
  end
elseif op == 'done' then
  local removed = redis.call('ZREM', trialsKey, ARGV[14])
  local outcome = ARGV[15]
  if state == 'half-open' and tonumber(ARGV[13]) == gen and outcome ~= 'a' then
    if outcome == 's' then
      cf = 0
      ts = ts + 1
      if ts >= successesToClose then transition('closed', 'trial-success', now) end
    else
      cf = cf + (outcome == 'f' and 1 or 0)
      transition('open', outcome == 'f' and 'trial-failure' or 'trial-slow', now)
    end
  end
elseif op == 'isolate' then
  transition('isolated', 'manual', now)
elseif op == 'reset' then
  transition('closed', 'manual', now)
end

redis.call('HSET', key, 'state', state, 'gen', gen, 'reason', reason, 'cf', cf, 'co', co, 'openedAt', openedAt,
  'retryAt', retryAt, 'bd', bd, 'ft', ft, 'ts', ts, 'wc', wc, 'wf', wf, 'ws', ws, 'w', w)
if state == 'isolated' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, math.max(0, retryAt - now) + 86400000)
end
if changed then
  redis.call('PUBLISH', key, gen .. ' ' .. state .. ' ' .. retryAt .. ' ' .. reason .. ' ' .. co .. ' ' .. openedAt)
end
local trials = 0
if state == 'half-open' then trials = redis.call('ZCOUNT', trialsKey, now, '+inf') end
return { gen, state, retryAt, now, cf, co, wc, wf, ws, trials, ts, reason, granted, openedAt }
`,
};

/** The keys of a shared breaker, hash-tagged so a cluster keeps them in one slot; the first is also its channel. */
export function breakerKeys(name: string): [state: string, trials: string] {
  return [`{bulwark:${name}}:breaker`, `{bulwark:${name}}:trials`];
}

/** What the script answers, as numbers and strings. */
export interface SharedState {
  readonly gen: number;
  readonly state: 'closed' | 'open' | 'half-open' | 'isolated';
  readonly retryAt: number;
  readonly now: number;
  readonly consecutiveFailures: number;
  readonly consecutiveOpens: number;
  readonly calls: number;
  readonly failures: number;
  readonly slowCalls: number;
  readonly trials: number;
  readonly trialSuccesses: number;
  readonly reason: string;
  readonly granted: number;
  readonly openedAt: number | undefined;
}

const STATES = new Set(['closed', 'open', 'half-open', 'isolated']);

/** Reads the script's answer; a malformed one (not bulwark's script under that SHA) is an error. */
export function parseAnswer(answer: unknown): SharedState {
  if (!Array.isArray(answer) || answer.length !== 14 || !STATES.has(String(answer[1]))) {
    throw new TypeError(`RedisCircuitBreaker: unexpected answer from Redis: ${JSON.stringify(answer)}`);
  }
  const n = (at: number): number => Number(answer[at]);
  const openedAt = n(13);
  return {
    gen: n(0),
    state: String(answer[1]) as SharedState['state'],
    retryAt: n(2),
    now: n(3),
    consecutiveFailures: n(4),
    consecutiveOpens: n(5),
    calls: n(6),
    failures: n(7),
    slowCalls: n(8),
    trials: n(9),
    trialSuccesses: n(10),
    reason: String(answer[11]),
    granted: n(12),
    // Stryker disable next-line EqualityOperator: openedAt is -1 (none) or a server time in ms, never 0: `<= 0` answers alike.
    openedAt: openedAt < 0 ? undefined : openedAt,
  };
}
