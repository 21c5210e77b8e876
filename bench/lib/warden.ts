/**
 * @module bench/lib/warden
 * Warden as an operator runs it: `node bin/warden.js serve` in a child process, on a spare
 * loopback port, with a superuser created by the CLI beforehand.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from './client.js';
import { type Proc, sparePort, startProcess, wardenCli } from './procs.js';

export const BENCH_PASSWORD = 'bench-password-1234';
export const ADMIN_EMAIL = 'bench-admin@example.test';

export interface WardenSetup {
  /** Short name for logs and tables. */
  name: string;
  /** DATABASE_URL, REDIS_URL, SESSION_STORE… */
  env: Record<string, string>;
}

export interface Warden extends Proc {
  name: string;
  env: Record<string, string>;
  base: string;
  /** A signed-in superuser. */
  admin: Client;
}

const sqliteDirs: string[] = [];

/** A fresh SQLite file under the OS temp dir, removed by removeSqliteFiles. */
export function sqliteFile(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `warden-bench-${name}-`));
  sqliteDirs.push(dir);
  return path.join(dir, 'warden.db');
}

/** Removes every file sqliteFile made: a million-session fleet is about 1.4 GB. */
export function removeSqliteFiles(): void {
  for (const dir of sqliteDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export function wardenEnv(setup: WardenSetup, port: number): Record<string, string> {
  return {
    HOST: '127.0.0.1',
    PORT: String(port),
    // Request lines cost a write each; the peers log nothing, so neither does Warden here.
    LOG_LEVEL: 'warn',
    CLEANUP_INTERVAL: '0',
    WARDEN_PASSWORD: BENCH_PASSWORD,
    WARDEN_DEMO_PASSWORD: BENCH_PASSWORD,
    ...setup.env,
  };
}

export async function createSuperuser(setup: WardenSetup, email: string): Promise<void> {
  await wardenCli(['create-superuser', '--email', email], wardenEnv(setup, 0));
}

/** Starts Warden (migrating its database) and signs the bench superuser in. */
export async function startWarden(setup: WardenSetup): Promise<Warden> {
  await createSuperuser(setup, ADMIN_EMAIL);
  const port = await sparePort();
  const env = wardenEnv(setup, port);
  const proc = await startProcess(
    `warden-${setup.name}`,
    'node',
    ['bin/warden.js', 'serve'],
    port,
    env,
  );
  const base = `http://127.0.0.1:${port}`;
  const admin = new Client(base);
  await admin.wardenLogin(ADMIN_EMAIL, BENCH_PASSWORD);
  return { ...proc, name: setup.name, env, base, admin };
}
