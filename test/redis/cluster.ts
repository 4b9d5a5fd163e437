/**
 * A local Redis Cluster of three masters for the tests: three `redis-server --cluster-enabled yes`
 * on free ports (each with its bus port, port + 10 000, free too) in one temp dir, joined by
 * `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`, ready once every node's
 * `CLUSTER INFO` says `cluster_state:ok`. A missing redis-server or redis-cli fails the test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function requireTool(tool: 'redis-server' | 'redis-cli'): void {
  const probe = spawnSync(tool, ['--version']);
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(`${tool} is not installed: the cluster tests need it (apt-get install redis-server; .ci/run installs it)`);
  }
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port whose cluster bus port (port + 10 000) is free too, neither among `taken`. */
async function clusterPort(taken: number[]): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    if (taken.includes(port) || taken.includes(port + 10_000) || taken.includes(port - 10_000)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) return port;
  }
  throw new Error('no free pair of ports for a cluster node');
}

function cli(port: number, ...args: string[]): string {
  const answer = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 20_000 });
  if (answer.error !== undefined) throw answer.error;
  if (answer.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${answer.stderr || answer.stdout}`);
  return answer.stdout;
}

export class RedisCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'bulwark-redis-cluster-'));
  private readonly children: ChildProcess[] = [];

  private constructor(readonly ports: number[]) {}

  static async start(): Promise<RedisCluster> {
    requireTool('redis-server');
    requireTool('redis-cli');
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) ports.push(await clusterPort(ports));
    const cluster = new RedisCluster(ports);
    try {
      await cluster.boot();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** The nodes, as ioredis's `Cluster` and node-redis's `createCluster` take them. */
  get nodes(): { host: string; port: number }[] {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  /** Runs `redis-cli` on every node (SCRIPT FLUSH…). */
  onEveryNode(...args: string[]): string[] {
    return this.ports.map((port) => cli(port, ...args));
  }

  /** The hash slot of `key`. */
  slotOf(key: string): number {
    return Number(cli(this.ports[0] as number, 'CLUSTER', 'KEYSLOT', key).trim());
  }

  /** The port of the master that owns `key`'s slot. */
  ownerOf(key: string): number {
    const slot = this.slotOf(key);
    for (const port of this.ports) {
      const mine = cli(port, 'CLUSTER', 'NODES').split('\n').find((line) => line.includes('myself')) ?? '';
      for (const range of mine.split(' ').slice(8)) {
        const [from, to] = range.split('-').map(Number);
        if (from !== undefined && slot >= from && slot <= (to ?? from)) return port;
      }
    }
    throw new Error(`no node owns slot ${slot}`);
  }

  private async boot(): Promise<void> {
    for (const port of this.ports) {
      const child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--dir', this.dir],
        { stdio: 'ignore' },
      );
      this.children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', resolve);
      });
    }
    for (const port of this.ports) await until(() => cli(port, 'PING').trim() === 'PONG', `node ${port} to answer PING`);
    cli(this.ports[0] as number, '--cluster', 'create', ...this.ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes');
    for (const port of this.ports) await until(() => cli(port, 'CLUSTER', 'INFO').includes('cluster_state:ok'), `node ${port} to say cluster_state:ok`);
    // …and until every node sees the same slot map (a client's first CLUSTER SLOTS may ask any).
    const map = (port: number) =>
      cli(port, 'CLUSTER', 'NODES')
        .split('\n')
        .filter((line) => line.includes('master'))
        .map((line) => `${line.split(' ')[0]} ${line.split(' ').slice(8).join(' ')}`)
        .sort()
        .join('|');
    await until(() => {
      const maps = this.ports.map(map);
      return maps.every((m) => m === maps[0] && m.split('|').length === 3 && !m.split('|').some((entry) => entry.split(' ')[1] === ''));
    }, 'every node to agree on the slot map');
  }

  async close(): Promise<void> {
    await Promise.all(
      this.children.splice(0).map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    let ok = false;
    try {
      ok = check();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
