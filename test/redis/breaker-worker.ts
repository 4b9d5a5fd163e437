/**
 * One replica of the shared breaker's many-process proof, for one scenario after another (the
 * process is forked once): argv: port. Each scenario starts with `{ type: 'setup', family,
 * name, mode }`: family `ioredis` or `node-redis`, mode `push` (with a subscriber connection) or
 * `poll` (without).
 *
 * After 'go' it calls a dependency stub through one RedisCircuitBreaker (failureThreshold 8,
 * recoveryTimeout 1 s, halfOpenMaxCalls 2), one call at a time, a call every PACE ms. The parent
 * says when the dependency goes 'down' and comes back 'up'. While down, the stub fails at most
 * CAP calls of this process before it has heard of the opening (a later call is withdrawn by its
 * caller, which the breaker does not count): no process alone reaches the threshold. A call that
 * reaches the stub once the process has heard of the opening is a half-open trial: it takes
 * TRIAL_MS, then fails while the dependency is down and succeeds once it is up.
 *
 * It tells the parent 'started' once forked and 'ready' once set up, then `opened` (when it
 * heard of the opening, by its stateChange, and when it first refused a call), `reopened` (a
 * failed trial opened it again), `closed` (a trial closed it), and after 'stop' (its breaker
 * closed, its connections quit) its report: the local time of every call that reached the stub
 * once the dependency was down, its counts and the state changes it saw.
 */
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { CircuitOpenError } from '../../src/index.js';
import { RedisCircuitBreaker } from '../../src/redis/index.js';

const THRESHOLD = 8;
const CAP = 2;
const HALF_OPEN_MAX_CALLS = 2;
const RECOVERY_MS = 1_000;
const PACE = 10;
const TRIAL_MS = 150;

const port = process.argv[2] as string;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Setup {
  family: 'ioredis' | 'node-redis';
  name: string;
  mode: 'push' | 'poll';
}

interface Connection {
  client: never;
  subscriber: never | undefined;
  quit(): Promise<void>;
}

async function connect({ family, mode }: Setup): Promise<Connection> {
  if (family === 'node-redis') {
    const client = createClient({ url: `redis://127.0.0.1:${port}` });
    client.on('error', () => {});
    await client.connect();
    const subscriber = mode === 'push' ? client.duplicate() : undefined;
    subscriber?.on('error', () => {});
    await subscriber?.connect();
    return {
      client: client as never,
      subscriber: subscriber as never,
      // QUIT, not disconnect(): a report still in flight (a trial's outcome) gets its answer.
      quit: async () => {
        await subscriber?.quit().catch(() => {});
        await client.quit().catch(() => {});
      },
    };
  }
  const client = new IORedis({ port: Number(port), host: '127.0.0.1' });
  client.on('error', () => {});
  const subscriber = mode === 'push' ? client.duplicate() : undefined;
  subscriber?.on('error', () => {});
  return {
    client: client as never,
    subscriber: subscriber as never,
    quit: async () => {
      await subscriber?.quit().catch(() => {});
      await client.quit().catch(() => {});
    },
  };
}

const WITHDRAWN = new Error('withdrawn by its caller');

/** One scenario: its breaker, its dependency stub and what it saw. */
async function scenario(setup: Setup): Promise<(message: unknown) => Promise<void>> {
  const connection = await connect(setup);
  const breaker = new RedisCircuitBreaker(connection.client, {
    name: setup.name,
    failureThreshold: THRESHOLD,
    recoveryTimeout: RECOVERY_MS,
    halfOpenMaxCalls: HALF_OPEN_MAX_CALLS,
    subscriber: connection.subscriber,
    syncInterval: 20,
    // The CPU is shared by 8 processes, Redis and the test: a slow answer must not count as Redis down.
    timeout: 2_000,
  });

  let dependency: 'up' | 'down' = 'up';
  let stopping = false;
  let downSince: number | undefined;
  let heardAt: number | undefined;
  let refusedAt: number | undefined;
  let reportedOpen = false;
  let reopened = false;
  let closedAgain = false;
  /** Local times of the calls that reached the stub after the dependency went down. */
  const reached: number[] = [];
  const changes: string[] = [];
  const counts = { failures: 0, withdrawn: 0, refused: 0, trialsFailed: 0, trialsSucceeded: 0, ranAfterClose: 0, other: 0, storeErrors: 0 };

  const reportOpen = (): void => {
    if (heardAt !== undefined && refusedAt !== undefined && !reportedOpen) {
      reportedOpen = true;
      process.send?.({ type: 'opened', heardAt, refusedAt });
    }
  };
  const storeErrors: string[] = [];
  breaker.on('storeError', ({ error }) => {
    counts.storeErrors++;
    storeErrors.push(error.message);
  });
  breaker.on('stateChange', ({ from, to, reason }) => {
    const at = Date.now();
    changes.push(`${from}→${to} ${reason}`);
    if (downSince === undefined) return;
    if (to === 'open' && heardAt === undefined) heardAt = at;
    if (heardAt !== undefined && to === 'open' && from === 'half-open' && !reopened) {
      reopened = true;
      process.send?.({ type: 'reopened', at });
    }
    if (heardAt !== undefined && to === 'closed' && !closedAgain) {
      closedAgain = true;
      process.send?.({ type: 'closed', at });
    }
    reportOpen();
  });

  const stub = async (controller: AbortController): Promise<string> => {
    if (dependency === 'up' && (downSince === undefined || closedAgain)) return 'ran';
    reached.push(Date.now());
    if (heardAt === undefined) {
      // Down, and this process has not heard of the opening: its share of failures, then withdrawn.
      if (counts.failures < CAP) {
        counts.failures++;
        throw new Error('dependency down');
      }
      counts.withdrawn++;
      controller.abort(WITHDRAWN);
      throw WITHDRAWN;
    }
    // A half-open trial.
    await sleep(TRIAL_MS);
    if (dependency === 'down') {
      counts.trialsFailed++;
      throw new Error('dependency still down');
    }
    counts.trialsSucceeded++;
    return 'recovered';
  };

  const lane = async (): Promise<void> => {
    while (!stopping) {
      const controller = new AbortController();
      try {
        await breaker.execute(() => stub(controller), { signal: controller.signal });
        if (closedAgain) counts.ranAfterClose++;
      } catch (error) {
        if (error instanceof CircuitOpenError) {
          counts.refused++;
          if (downSince !== undefined && refusedAt === undefined) {
            refusedAt = Date.now();
            reportOpen();
          }
        } else if (error !== WITHDRAWN && !(error instanceof Error && /dependency/.test(error.message))) {
          counts.other++;
        }
      }
      await sleep(PACE);
    }
  };

  // A first call reads the shared state.
  await breaker.execute(() => 'warm');
  let running: Promise<void> | undefined;
  return async (message) => {
    if (message === 'go') running = lane();
    else if (message === 'down') {
      downSince = Date.now();
      dependency = 'down';
    } else if (message === 'up') dependency = 'up';
    else if (message === 'stop') {
      stopping = true;
      await running;
      const storeUp = breaker.storeUp;
      const state = breaker.state;
      await breaker.close();
      await connection.quit();
      process.send?.({ type: 'report', reached, counts, changes, storeUp, state, storeErrors });
    }
  };
}

let current: ((message: unknown) => Promise<void>) | undefined;
process.on('message', async (message: unknown) => {
  if (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'setup') {
    current = await scenario(message as Setup);
    process.send?.('ready');
  } else if (message === 'exit') {
    process.exit(0);
  } else {
    await current?.(message);
  }
});
process.send?.('started');
