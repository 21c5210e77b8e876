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

/** Waits until a redis-server answers at `url`; resolves with that server's process id. */
async function waitReady(url: string, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    c.on('error', () => {});
    try {
      await c.connect();
      const info = await c.info('server');
      c.destroy();
      return Number(/process_id:(\d+)/.exec(info)?.[1] ?? -1);
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
  let port = 0;
  let url = '';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-redis-'));
  let child: ChildProcess | undefined;

  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => c.once('exit', () => resolve()));
  /** Whether the server answering on the port is this one (another file's may hold it). */
  const launch = async (): Promise<boolean> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
    args.push('--appendonly', opts.persist ? 'yes' : 'no');
    const own = spawn('redis-server', args, { stdio: 'ignore' });
    child = own;
    leftovers.set(dir, own);
    const answering = await waitReady(url);
    if (answering === own.pid) return true;
    own.kill('SIGKILL');
    await exited(own);
    return false;
  };
  // A spare port can be taken by another test file's server between its choice and the bind:
  // then this server exits, another answers in its place, and pausing it would pause theirs.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    if (await launch()) break;
    if (attempt === 5) throw new Error('no spare port held by a redis-server of this test');
  }
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
    async start() {
      if (!(await launch())) throw new Error(`port ${port} is held by another redis-server`);
    },
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
