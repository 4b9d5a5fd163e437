import { describe, expect, it } from 'vitest';
import { serve } from '../test/fixtures/http.js';
import { partnerClient } from './per-tenant-fetch.js';

describe('per-tenant limits in front of a bulwark/fetch client', () => {
  it('refuses a tenant past its share with a Retry-After, while another tenant goes on, and the partner sees only the permitted requests', async () => {
    let hits = 0;
    const url = await serve((_request, response) => {
      hits++;
      response.writeHead(200).end('ok');
    });
    const { lookup, tenants } = partnerClient(url, 5);
    const noisy = await Promise.all(Array.from({ length: 8 }, (_, i) => lookup('noisy', String(i))));
    const quiet = await Promise.all(Array.from({ length: 3 }, (_, i) => lookup('quiet', String(i))));

    expect(noisy.filter((answer) => answer.status === 200)).toHaveLength(5);
    const refused = noisy.filter((answer) => answer.status === 429);
    expect(refused).toHaveLength(3);
    // 5 a second: the next permit of the noisy tenant is about 200 ms away, answered as 1 s.
    expect(refused.every((answer) => answer.retryAfter === 1)).toBe(true);
    expect(quiet.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(hits).toBe(8);
    expect([...tenants.keys()].sort()).toEqual(['noisy', 'quiet']);
  });
});
