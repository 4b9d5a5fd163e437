/**
 * `npm run demo`: a live dashboard of five dependencies that misbehave on a script, each
 * called through its own `resilientFetch` (bulwark/fetch) with a fallback around it, watched
 * through a `MetricsRegistry`.
 *
 * Real HTTP servers on 127.0.0.1 (a random port each: one origin per dependency) play
 * `payments`, `inventory`, `recommendations`, `geocoding` and `pricing`. It follows a script whose phases scale with
 * the run: healthy, an error burst (500s, dropped connections), a latency spike, a full
 * outage, and the recovery. Geocoding's vendor allows 20 requests a second and answers 429
 * beyond; through the error burst and the latency spike the shop asks it for 36. One pricing
 * answer in 20 takes 20 times as long as the others, always. An open-loop load of concurrent
 * callers (about 190 calls per second, 215 in the rush) goes through a fallback (answering
 * errors and responses that are not 2xx) around each dependency's resilientFetch, whose
 * policies for the origin are, outermost first:
 *
 *   payments (POST):  total timeout → bulkhead → retry → breaker → attempt timeout
 *   inventory:        total timeout → bulkhead → retry → breaker → attempt timeout
 *   recommendations:  total timeout → bulkhead → breaker → attempt timeout (no retry)
 *   geocoding:        total timeout → rate limit → breaker → attempt timeout
 *   pricing:          total timeout → hedge → breaker (no attempt timeout, no retry)
 *
 * each with its own settings (see `demo/stacks.ts`). The payments POST carries an
 * `Idempotency-Key` per order, which is what lets resilientFetch retry it. Twice a second the dashboard redraws, per
 * dependency: the breaker's state, calls per second, ok / fallback / rejected / timed out,
 * p50 and p99 latency, the upstream's own request rate, and a timeline of breaker states;
 * for geocoding, what the rate limiter let through, made wait and refused, its permits and
 * queue, and the vendor's 429s; for pricing, the hedges started and won, and the p99 callers
 * see next to the upstream's own. Every number comes from the registry's snapshot or the
 * upstream's counters.
 *
 *   npm run demo                     20 s; the dashboard when stdout is a terminal
 *   npm run demo -- --duration 8     8 s, same story, faster
 *   npm run demo -- --plain          periodic plain lines (also with NO_COLOR or no terminal)
 *
 * It ends by itself with a summary and exit code 0, closing its server and timers so the
 * process exits on its own. Ctrl-C ends it early: terminal restored, summary printed, 130.
 */
import { main } from './demo/cli.js';

process.exitCode = await main(process.argv.slice(2));
