/**
 * The seed's `ServiceWithFallback` in a few lines of bulwark: try the profile service
 * (through its own breaker, retry and timeout), else the last good profile cached for that
 * user, else a guest profile. Every success refreshes the cache; the cache is bounded (LRU)
 * and its entries expire, so a long outage ends up serving the default rather than data of
 * any age.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/service-with-fallback.ts
 */
import { CircuitBreaker, MemoryCache, compose, retryWithBackoff, withCacheFallback, withTimeout } from 'bulwark';
import { runMain } from './is-main.js';

export interface Profile {
  readonly userId: string;
  readonly name: string;
  readonly plan: 'free' | 'pro';
}

/** A stand-in for the profile service's client; `up = false` makes every call fail. */
export const profileService = {
  up: true,
  calls: 0,
  async fetchProfile(userId: string): Promise<Profile> {
    profileService.calls++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (!profileService.up) throw new Error('profile service unavailable');
    return { userId, name: userId === 'ada' ? 'Ada Lovelace' : `User ${userId}`, plan: 'pro' };
  },
};

export const profileStack = compose(
  new CircuitBreaker({ failureThreshold: 3, recoveryTimeout: 10_000, name: 'profiles' }),
  retryWithBackoff({ maxRetries: 2, baseDelay: 50, maxDelay: 500, name: 'profiles' }),
  withTimeout(500, { name: 'profiles' }),
);

/** The whole of the seed's ServiceWithFallback. */
export const getProfile = withCacheFallback(profileStack.wrap(profileService.fetchProfile), {
  cache: new MemoryCache<Profile>({ maxEntries: 10_000, ttl: 5 * 60_000 }),
  key: (userId) => userId,
  default: (_error, userId): Profile => ({ userId, name: 'Guest', plan: 'free' }),
});

async function main(): Promise<void> {
  const show = async (userId: string): Promise<void> => {
    const before = profileService.calls;
    const profile = await getProfile(userId);
    const tries = profileService.calls - before;
    console.log(`  getProfile('${userId}') → ${profile.name} (${profile.plan}) after ${tries} call${tries === 1 ? '' : 's'} to the service`);
  };
  console.log('the service is up: fresh profiles, which the cache keeps');
  await show('ada');
  console.log('the service goes down: retries fail, the cache answers for a user it has seen, the default for one it has not');
  profileService.up = false;
  await show('ada');
  await show('grace');
  await show('ada');
  console.log('three failed calls opened the breaker: no call reaches the service, the answers still come');
  await show('ada');
  await show('grace');
}

runMain(import.meta.url, main);
