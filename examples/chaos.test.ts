/**
 * The chaos drill of examples/chaos.ts: under 30 % injected faults and 10 % latency spikes past
 * the per-attempt timeout, the callers of a healthy dependency see no error, and their p99
 * stays under the total timeout. Virtual time: nothing sleeps, and a seed replays a run.
 */
import { describe, expect, it } from 'vitest';
import { ATTEMPT_TIMEOUT, TOTAL_TIMEOUT, VirtualClock, chaosDrill, searchStack, serveWithChaosHeader } from './chaos.js';

describe('the chaos drill', () => {
  it('1 000 calls under chaos: no caller sees an error, p99 stays under the total timeout, nothing is left behind', async () => {
    const report = await chaosDrill({ calls: 1_000, seed: 1 });
    expect(report.errors).toBe(0);
    expect(report.p99).toBeLessThan(TOTAL_TIMEOUT);
    expect(report.max).toBeLessThan(TOTAL_TIMEOUT);
    expect(report.p50).toBeLessThan(ATTEMPT_TIMEOUT); // most callers never notice
    expect(report.timersLeft).toBe(0);
    // The chaos was real: about 30 % of the attempts that reached the fault failed, 10 % of all hung.
    const attempts = report.calls + report.retries;
    expect(report.spikes / attempts).toBeGreaterThan(0.07);
    expect(report.spikes / attempts).toBeLessThan(0.13);
    expect(report.faults / (attempts - report.spikes)).toBeGreaterThan(0.25);
    expect(report.faults / (attempts - report.spikes)).toBeLessThan(0.35);
    expect(report.retries).toBe(report.faults + report.spikes); // each injection cost one retry, and only those
    expect(report.p99).toBeGreaterThan(ATTEMPT_TIMEOUT); // the spikes did reach the callers' tail
  });

  it('replays exactly with the same seed, and differs with another', async () => {
    const first = await chaosDrill({ calls: 200, seed: 7 });
    expect(await chaosDrill({ calls: 200, seed: 7 })).toEqual(first);
    expect(await chaosDrill({ calls: 200, seed: 8 })).not.toEqual(first);
  });

  it('injects only into requests that asked for chaos', async () => {
    const clock = new VirtualClock();
    const { stack, counts } = searchStack({ clock, seed: 1 });
    for (let i = 0; i < 50; i++) await expect(serveWithChaosHeader({}, () => stack.execute(() => 'fine'))).resolves.toBe('fine');
    expect(counts).toEqual({ faults: 0, spikes: 0, retries: 0 });
    const chaotic = Array.from({ length: 50 }, () => serveWithChaosHeader({ 'x-chaos': 'on' }, () => stack.execute(() => 'fine')));
    await clock.run();
    await expect(Promise.all(chaotic)).resolves.toEqual(Array.from({ length: 50 }, () => 'fine'));
    expect(counts.faults + counts.spikes).toBeGreaterThan(0);
    expect(clock.armed).toBe(0);
  });
});
