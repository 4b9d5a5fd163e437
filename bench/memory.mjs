// Memory and timers, in a process of its own (started by hot-path.mjs with --expose-gc), so the
// timing cases' garbage and the peers' modules do not blur the figures. Prints one JSON line.
//
//   node --expose-gc bench/memory.mjs [--quick]
//
// Timers are counted two ways. `process.getActiveResourcesInfo()` lists only what keeps the
// process alive, so an unref'd timer is invisible to it; the global timer functions are
// therefore wrapped (before any library is loaded) to count every live timer, unref'd or not.
// A handle counts while Node has not destroyed it (`_destroyed`, Node's own flag), so a timer
// cleared by `timer.close()` or by its numeric id is not miscounted, and one re-armed by
// `timer.refresh()` after it fired is counted again.
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');

const quick = process.argv.includes('--quick');
const BREAKERS = quick ? 10_000 : 100_000;
const OPOSSUM_BREAKERS = quick ? 1_000 : 10_000;
const CALLS = quick ? 100_000 : 1_000_000;
const TIMEOUT = 1_000;

const live = new Set();
const { setTimeout: realSetTimeout, setInterval: realSetInterval, clearTimeout: realClearTimeout, clearInterval: realClearInterval } = globalThis;
globalThis.setTimeout = function setTimeout(callback, ms, ...args) {
  const handle = realSetTimeout((...a) => {
    live.delete(handle);
    callback(...a);
  }, ms, ...args);
  live.add(handle);
  return handle;
};
globalThis.setInterval = function setInterval(callback, ms, ...args) {
  const handle = realSetInterval(callback, ms, ...args);
  live.add(handle);
  return handle;
};
globalThis.clearTimeout = function clearTimeout(handle) {
  live.delete(handle);
  realClearTimeout(handle);
};
globalThis.clearInterval = function clearInterval(handle) {
  live.delete(handle);
  realClearInterval(handle);
};
{
  const probe = realSetTimeout(() => {}, 0);
  realClearTimeout(probe);
  const timeoutPrototype = Object.getPrototypeOf(probe);
  const refresh = timeoutPrototype.refresh;
  timeoutPrototype.refresh = function refreshCounted() {
    const result = refresh.call(this);
    live.add(this);
    return result;
  };
}
const liveTimers = () => {
  for (const handle of live) if (handle._destroyed === true) live.delete(handle);
  return live.size;
};

const refTimers = () => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;
const timers = () => ({ all: liveTimers(), ref: refTimers() });
const heap = () => process.memoryUsage().heapUsed;
const sleep = (ms) => new Promise((resolve) => realSetTimeout(resolve, ms));
async function settle() {
  for (let i = 0; i < 8; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const result = { breakers: BREAKERS, opossumBreakers: OPOSSUM_BREAKERS, calls: CALLS, timeout: TIMEOUT };

// 1. A million calls through the full stack, with only bulwark loaded.
{
  const { Bulkhead, CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout } = await import('../dist/index.js');
  const work = async () => 1;
  const stack = compose(withFallback(0), new CircuitBreaker(), retryWithBackoff(), withTimeout(TIMEOUT), new Bulkhead({ maxConcurrent: 10 }));
  // Warm up first, so compiled code does not count as growth; and twice, with full GCs in
  // between, because ~150 KB of start-up garbage (module bodies, code V8 replaced) is only
  // reclaimed by the GCs that follow work, not by the forced ones alone: measured before the
  // second warm-up, "before" read 4 % to 6 % high. Then wait out the deadline so warm-up
  // timers are gone too.
  for (let warmUp = 0; warmUp < 2; warmUp++) {
    for (let i = 0; i < CALLS / 10; i++) await stack.execute(work);
    await settle();
  }
  await sleep(TIMEOUT + 100);
  await settle();
  const timersBefore = timers();
  const resourcesBefore = process.getActiveResourcesInfo();
  const heapBefore = heap();
  for (let i = 0; i < CALLS; i++) await stack.execute(work);
  const timersAfterCalls = timers();
  const resourcesAfterCalls = process.getActiveResourcesInfo();
  await settle();
  const heapAfter = heap();
  await sleep(TIMEOUT + 100);
  const timersAfterDeadline = timers();
  Object.assign(result, { heapBefore, heapAfter, timersBefore, timersAfterCalls, timersAfterDeadline, resourcesBefore, resourcesAfterCalls });
}

// 2. Idle breakers: heap bytes and timers per instance.
async function perInstance(make, count, dispose) {
  const keep = new Array(count).fill(null);
  await settle();
  const timersBefore = liveTimers();
  const before = heap();
  for (let i = 0; i < count; i++) keep[i] = make();
  await settle();
  const bytes = (heap() - before) / count;
  const timersEach = (liveTimers() - timersBefore) / count;
  if (dispose) for (const instance of keep) dispose(instance);
  keep.fill(null);
  return { bytes, timers: timersEach, count };
}
{
  const { CircuitBreaker } = await import('../dist/index.js');
  result.bulwarkBreaker = await perInstance(() => new CircuitBreaker(), BREAKERS);
}
{
  const { ConsecutiveBreaker, circuitBreaker, handleAll } = await import('cockatiel');
  result.cockatielBreaker = await perInstance(
    () => circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) }),
    BREAKERS,
  );
}
{
  const { default: OpossumBreaker } = await import('opossum');
  const work = async () => 1;
  result.opossumBreaker = await perInstance(() => new OpossumBreaker(work), OPOSSUM_BREAKERS, (breaker) => breaker.shutdown());
}

result.timersAtExit = timers();
process.stdout.write(`${JSON.stringify(result)}\n`);
