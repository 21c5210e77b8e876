/**
 * SIGTERM during a slow request, on a real `warden serve` process. The request is slow because
 * Redis is paused under it (no test hook in the product): Warden stops accepting connections,
 * lets the request finish when Redis answers, closes Redis and the database, and exits 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import { UserRepo } from '../../src/users/user-repo.js';
import { PASSWORD, testPasswordHash } from '../support/app.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';
import { sleep, waitFor } from './harness.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** True when a TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe.skipIf(!redisServerAvailable() && !servicesRequired())(
  'SIGTERM during a slow request',
  () => {
    let own: OwnRedis;
    let child: ChildProcess | undefined;
    let dir: string;
    let port: number;
    let output = '';

    beforeAll(async () => {
      own = await startOwnRedis();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-shutdown-'));
      const file = path.join(dir, 'warden.db');
      const database = openDatabase({ kind: 'sqlite', file });
      await migrateToLatest(database.db, database.dialect);
      await new UserRepo(database.db, database.dialect).create({
        email: 'una@example.test',
        passwordHash: await testPasswordHash(),
        role: 'user',
        status: 'approved',
        now: Date.now(),
      });
      await database.close();

      port = await freePort();
      child = spawn(process.execPath, ['bin/warden.js', 'serve'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOST: '127.0.0.1',
          PORT: String(port),
          DATABASE_URL: file,
          REDIS_URL: own.url,
          // Long enough that the request waits for the paused Redis instead of timing out.
          STORE_TIMEOUT: '5s',
          SHUTDOWN_GRACE: '10s',
          CLEANUP_INTERVAL: '0',
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d) => {
        output += d;
      });
      child.stderr!.on('data', (d) => {
        output += d;
      });
      await waitFor(
        async () =>
          (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok === true,
        20_000,
        'warden serve to listen',
      );
    }, 30_000);

    afterAll(async () => {
      own?.resume();
      if (child && child.exitCode === null) child.kill('SIGKILL');
      await own?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('should finish the request in flight, refuse new connections, and exit 0', async () => {
      const base = `http://127.0.0.1:${port}`;
      const csrf = await fetch(`${base}/api/auth/csrf`);
      const jar = csrf.headers.getSetCookie().map((c) => c.split(';')[0]);
      const login = await fetch(`${base}/api/auth/login`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-csrf-token': (await csrf.json()).token,
          cookie: jar.join('; '),
        },
        body: JSON.stringify({ email: 'una@example.test', password: PASSWORD }),
      });
      expect(login.status).toBe(200);
      const cookie = [...jar, ...login.headers.getSetCookie().map((c) => c.split(';')[0])].join(
        '; ',
      );
      const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));

      own.pause();
      const started = performance.now();
      const slow = fetch(`${base}/api/auth/session`, { headers: { cookie } });
      await sleep(300);
      child!.kill('SIGTERM');
      await waitFor(() => refused(port), 2_000, 'the listener to close');
      await sleep(500);
      own.resume();

      const res = await slow;
      expect(res.status).toBe(200);
      expect((await res.json()).email).toBe('una@example.test');
      expect(performance.now() - started).toBeGreaterThan(700);
      const answeredAt = performance.now();
      expect(await exited).toBe(0);
      // Done once the last request is: the connection it leaves idle does not hold the exit.
      expect(performance.now() - answeredAt).toBeLessThan(3_000);
      expect(output).toMatch(/"event":"shutdown"/);
      expect(output).toMatch(/"event":"stopped"/);
      expect(output).not.toMatch(/shutdown_grace_over/);
    }, 30_000);
  },
);
