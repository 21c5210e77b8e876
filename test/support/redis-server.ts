/**
 * A redis-server of the test's own on a spare loopback port, for tests that stop,
 * pause or measure Redis. Never touches the shared server on 6379.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { afterAll } from 'vitest';

export interface OwnRedis {
  url: string;
  port: number;
  pid: number;
  /** SIGSTOP: the server keeps its sockets but answers nothing. */
  pause(): void;
  resume(): void;
  /** Stops the process (SIGKILL), keeping its data in memory lost unless persisted. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function redisServerAvailable(): boolean {
  return ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].some((p) => fs.existsSync(p));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.ping();
      c.destroy();
      return;
    } catch {
      if (c.isOpen) c.destroy();
      if (Date.now() > deadline) throw new Error(`redis-server at ${url} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Each server directory these tests made and have not removed, with its latest server: killed
 * and removed after the importing file's tests, so that a suite whose teardown throws before
 * `stop()` (an app that failed to close) leaves no redis-server behind.
 */
const leftovers = new Map<string, ChildProcess | undefined>();
// Registered while the importing file is collected: its last hook, after the suite's own. (A
// process 'exit' handler never runs: the test runner ends its workers with a signal.)
afterAll(() => {
  for (const [dir, child] of leftovers) {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  leftovers.clear();
});

/** Starts a redis-server; `persist` keeps an append-only file so data survives a kill. */
export async function startOwnRedis(opts: { persist?: boolean } = {}): Promise<OwnRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const launch = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
    args.push('--appendonly', opts.persist ? 'yes' : 'no');
    child = spawn('redis-server', args, { stdio: 'ignore' });
    leftovers.set(dir, child);
    await waitReady(url);
  };
  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => c.once('exit', () => resolve()));

  await launch();
  return {
    url,
    port,
    get pid() {
      return child?.pid ?? -1;
    },
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async kill() {
      if (!child) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited(child);
    },
    start: launch,
    async stop() {
      if (child) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited(child);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      leftovers.delete(dir);
    },
  };
}
