/**
 * @module bench/lib/procs
 * The processes a benchmark run starts for itself, all on loopback: its own redis-server on a
 * spare port, a PostgreSQL database of its own, Warden and the peer servers. Every process is
 * stopped by its own pid when the run ends; nothing touches the shared Redis on 6379.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const run = promisify(execFile);

const started: ChildProcess[] = [];

/** A free TCP port on 127.0.0.1. */
export async function sparePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

export async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Proc {
  child: ChildProcess;
  port: number;
  log: string;
  stop(): Promise<void>;
}

/** Starts a command whose output goes to a log file, and waits for its port. */
export async function startProcess(
  name: string,
  command: string,
  args: string[],
  port: number,
  env: Record<string, string> = {},
): Promise<Proc> {
  const log = path.join(os.tmpdir(), `warden-bench-${name}-${port}.log`);
  const out = fs.openSync(log, 'w');
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  started.push(child);
  const exited = once(child, 'exit').then(() => {
    throw new Error(`${name} exited early; see ${log}`);
  });
  exited.catch(() => {});
  await Promise.race([waitForPort(port), exited]);
  return {
    child,
    port,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await once(child, 'exit').catch(() => {});
      clearTimeout(timer);
    },
  };
}

/** Kills, by pid, every process this run started and that still runs (on exit or Ctrl-C). */
export function killAll(): void {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** A redis-server of the bench's own: no persistence, a spare port, loopback only. */
export async function startRedis(): Promise<Proc & { url: string }> {
  const port = await sparePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-bench-redis-'));
  // Its working directory holds nothing (no persistence); it goes when the run ends.
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const proc = await startProcess(
    'redis',
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--slowlog-log-slower-than',
      '10000',
      '--slowlog-max-len',
      '1024',
    ],
    port,
  );
  return { ...proc, url: `redis://127.0.0.1:${port}` };
}

/** Node's libpq-like default user, as test/support/services.ts does it. */
function pgUser(): string {
  return process.env.PGUSER || os.userInfo().username;
}

/** Creates a database of the bench's own on 127.0.0.1:5432; `drop` removes it. */
export async function createDatabase(
  name: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = `postgres://${pgUser()}@127.0.0.1:5432/postgres`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${name}`);
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  return {
    url: `postgres://${pgUser()}@127.0.0.1:5432/${name}`,
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Runs `node bin/warden.js <args>` to completion; returns stdout. */
export async function wardenCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ stdout: string; stderr: string }> {
  return run('node', ['bin/warden.js', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** Resident memory of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}
