/**
 * bulwark/fetch as users install it: built, packed, extracted into a fresh project. It
 * composes the core's own policies, so the entry takes the core from `bulwark` itself and
 * never carries a copy of the engine. Needs `dist/` built (`npx tsup`; `npm test` builds
 * before vitest runs).
 */
import { describe, expect, it } from 'vitest';
import { expectCoreTakenByName, installedConsumer } from '../fixtures/subpath-package.js';


// A server answering 503 then 200: the call is retried, and its policies are the core's own.
const scenario = `
  const http = require_('node:http');
  let served = 0;
  const server = http.createServer((req, res) => { served++; res.statusCode = served === 1 ? 503 : 200; res.end('served ' + served); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = 'http://127.0.0.1:' + server.address().port;
  const registry = new core.MetricsRegistry();
  const api = fetchEntry.resilientFetch({ name: 'api', retry: { baseDelay: 1 }, metrics: registry });
  const response = await api(origin + '/x');
  const text = await response.text();
  const outer = core.compose(core.withTimeout(1000), api.policyOf(origin));
  console.log(JSON.stringify({
    status: response.status,
    text,
    oneEngine: api.breakers instanceof core.CircuitBreakerGroup,
    composed: await outer.execute(() => 'composed'),
    tracked: registry.snapshot().policies.map((policy) => policy.kind).sort(),
  }));
  server.close();
`;
const expected = {
  status: 200,
  text: 'served 2',
  oneEngine: true,
  composed: 'composed',
  tracked: ['circuit-breaker', 'fetch', 'retry', 'timeout', 'timeout'],
};

const { node } = installedConsumer('fetch', { quiet: true });

describe('bulwark/fetch, built and installed', () => {
  it('dist/fetch.js imports the core from "bulwark" and shared chunks only: no copy of the engine, no node: module', () => {
    expectCoreTakenByName('fetch');
  });

  it('works with import (ESM), on the one engine of bulwark', async () => {
    const script = `import { createRequire } from 'node:module'; const require_ = createRequire(import.meta.url); const core = await import('bulwark'); const fetchEntry = await import('bulwark/fetch');${scenario}`;
    expect(await node(['--input-type=module', '--eval', script])).toEqual(expected);
  });

  it('works with require (CommonJS), on the one engine of bulwark', async () => {
    const script = `const require_ = require; const core = require('bulwark'); const fetchEntry = require('bulwark/fetch'); (async () => {${scenario}})();`;
    expect(await node(['--input-type=commonjs', '--eval', script])).toEqual(expected);
  });
});
