/**
 * bulwark/chaos as users install it: built, packed, extracted into a fresh project. Its policies
 * extend the core's LayerPolicy, so the entry must take the core from `bulwark` itself (the
 * package names itself) and never carry a copy of the engine: a copy's policies would be
 * another PolicyBase, which compose() takes for a foreign policy. Needs `dist/` built
 * (`npx tsup`; `npm test` builds before vitest runs).
 */
import { describe, expect, it } from 'vitest';
import { expectCoreTakenByName, installedConsumer } from '../fixtures/subpath-package.js';


// One call through a breaker around chaos: the fault is counted, the circuit opens, and the
// policies are the core's own (the stack is not run as a foreign policy).
const scenario = `
  const stack = core.compose(new core.CircuitBreaker({ failureThreshold: 2 }), chaos.chaosFault({ rate: 1, fault: new Error('injected') }));
  const errors = [];
  for (let i = 0; i < 3; i++) await stack.execute(() => 'ran').catch((error) => errors.push(error.name === 'CircuitOpenError' ? error.name : error.name + ': ' + error.message));
  const latency = chaos.chaosLatency({ rate: 1, latency: 1 });
  console.log(JSON.stringify({
    errors,
    oneEngine: latency instanceof core.LayerPolicy,
    late: await core.compose(core.withTimeout(1000), latency).execute(() => 'late'),
    outcome: await chaos.chaosOutcome({ rate: 1, outcome: 'injected' }).execute(() => 'ran'),
  }));
`;
const expected = {
  errors: ['Error: injected', 'Error: injected', 'CircuitOpenError'],
  oneEngine: true,
  late: 'late',
  outcome: 'injected',
};

const { node } = installedConsumer('chaos', { quiet: true });

describe('bulwark/chaos, built and installed', () => {
  it('dist/chaos.js imports the core from "bulwark" and shared chunks only: no copy of the engine', () => {
    expectCoreTakenByName('chaos');
  });

  it('works with import (ESM), on the one engine of bulwark', async () => {
    const script = `const core = await import('bulwark'); const chaos = await import('bulwark/chaos');${scenario}`;
    expect(await node(['--input-type=module', '--eval', script])).toEqual(expected);
    const resolved = await node(['--input-type=module', '--eval', `console.log(JSON.stringify(import.meta.resolve('bulwark/chaos')))`]);
    expect(resolved).toMatch(/\/node_modules\/bulwark\/dist\/chaos\.js$/);
  });

  it('works with require (CommonJS), on the one engine of bulwark', async () => {
    const script = `const core = require('bulwark'); const chaos = require('bulwark/chaos'); (async () => {${scenario}})();`;
    expect(await node(['--input-type=commonjs', '--eval', script])).toEqual(expected);
    const resolved = await node(['--input-type=commonjs', '--eval', `console.log(JSON.stringify(require.resolve('bulwark/chaos')))`]);
    expect(resolved).toMatch(/[\\/]node_modules[\\/]bulwark[\\/]dist[\\/]chaos\.cjs$/);
  });

  it('loaded first, it loads the same core a later import of bulwark gets', async () => {
    const esm = `const chaos = await import('bulwark/chaos'); const core = await import('bulwark'); console.log(JSON.stringify(chaos.chaosFault({ rate: 0, fault: new Error() }) instanceof core.LayerPolicy));`;
    expect(await node(['--input-type=module', '--eval', esm])).toBe(true);
    const cjs = `const chaos = require('bulwark/chaos'); const core = require('bulwark'); console.log(JSON.stringify(chaos.chaosFault({ rate: 0, fault: new Error() }) instanceof core.LayerPolicy));`;
    expect(await node(['--input-type=commonjs', '--eval', cjs])).toBe(true);
  });
});
