/**
 * `npm run demo`: a live dashboard of three dependencies that misbehave on a script, each
 * behind its own bulwark stack, watched through a `MetricsRegistry`.
 *
 * A real HTTP server on 127.0.0.1 (random port) plays `payments`, `inventory` and
 * `recommendations`. It follows a script whose phases scale with the run: healthy, an error
 * burst (500s, dropped connections), a latency spike, a full outage, and the recovery. A steady
 * load of concurrent callers (130 calls per second) goes through
 *
 *   payments:         withFallback → CircuitBreaker → retryWithBackoff → withTimeout → Bulkhead
 *   inventory:        withFallback → CircuitBreaker → retryWithBackoff → withTimeout → Bulkhead
 *   recommendations:  withFallback → CircuitBreaker → withTimeout → Bulkhead (no retry)
 *
 * each with its own settings (see `demo/stacks.ts`). Twice a second the dashboard redraws, per
 * dependency: the breaker's state, calls per second, ok / fallback / rejected / timed out,
 * p50 and p99 latency, the upstream's own request rate, and a timeline of breaker states.
 * Every number comes from the registry's snapshot or the upstream's counters.
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
