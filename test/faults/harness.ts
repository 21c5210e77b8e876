/**
 * What the fault suites (and bench/faults.ts) share: a Warden built the way `warden serve`
 * builds it (openRuntime, so the production Redis client with its reconnect strategy and no
 * offline queue, and the guarded PostgreSQL pool), a load of virtual users that records every
 * answer, and a TCP proxy that can stall or cut PostgreSQL.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import type { Role } from '../../src/db/schema.js';
import { createLogger } from '../../src/logger.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { Client, testPasswordHash } from '../support/app.js';

export interface Warden {
  app: FastifyInstance;
  runtime: Runtime;
  config: Config;
  /** JSON log lines written so far. */
  logs: Record<string, unknown>[];
  createUser(email: string, role?: Role): Promise<number>;
  client(): Client;
  close(): Promise<void>;
}

/** Settings every fault test wants: short bounds, no scheduled cleanup, no sign-in throttling. */
const FAULT_ENV = {
  LOG_LEVEL: 'info',
  STORE_TIMEOUT: '300ms',
  DATABASE_TIMEOUT: '500ms',
  CLEANUP_INTERVAL: '0',
  // Sign-ins during an outage fail by the hundred; that is the scenario, not an attack.
  SIGN_IN_LIMIT_IP: '1000000',
  SIGN_IN_LIMIT_ACCOUNT: '1000000',
  STEP_UP_BULK_THRESHOLD: '1000000',
};

/**
 * Opens a Warden on `env` (DATABASE_URL defaults to a SQLite file of its own). `wrapStore` wraps
 * the raw store under the guard, e.g. to count the calls that get past the breaker.
 */
export async function startWarden(
  opts: { env?: Record<string, string>; wrapStore?: (s: SessionStore) => SessionStore } = {},
): Promise<Warden> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-faults-'));
  const config = loadConfig({
    DATABASE_URL: path.join(dir, 'warden.db'),
    ...FAULT_ENV,
    ...opts.env,
  });
  const logs: Record<string, unknown>[] = [];
  const stream = {
    write(line: string) {
      // Without the error objects and their stacks: an outage logs thousands of failed
      // requests, and keeping those would be the test's memory growth, not Warden's.
      const { err: _err, ...entry } = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  const logger = createLogger(config, stream);
  const runtime = await openRuntime(config, logger, {
    redisUnavailable: 'continue',
    boundDatabase: true,
    trackReads: true,
  });
  const app = await buildApp(config, {
    database: runtime.database,
    store: opts.wrapStore ? opts.wrapStore(runtime.store) : runtime.store,
    logger,
    redis: runtime.redis,
    redisPrefix: runtime.redisPrefix,
    trackedReads: runtime.trackedReads,
  });
  await app.ready();

  return {
    app,
    runtime,
    config,
    logs,
    async createUser(email, role = 'user') {
      const row = await runtime.userRepo.create({
        email,
        passwordHash: await testPasswordHash(),
        role,
        status: 'approved',
        now: Date.now(),
      });
      return row.id;
    },
    client: () => new Client(app),
    async close() {
      await app.close();
      await runtime.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One answer seen by the load. */
export interface Sample {
  kind: string;
  /** When the request started, in ms since the load began. */
  at: number;
  latencyMs: number;
  status: number;
  code: string | null;
}

export type Step = () => Promise<{ statusCode: number; body: string }>;

/**
 * Runs each named step in a loop (one virtual user per entry) until `stop()` is called,
 * recording every answer. `pauseMs` between a user's requests keeps the load steady rather
 * than as fast as the process allows.
 */
export function runLoad(users: Array<[kind: string, step: Step]>, pauseMs = 20) {
  const samples: Sample[] = [];
  const t0 = performance.now();
  let running = true;
  const loops = users.map(async ([kind, step]) => {
    while (running) {
      const started = performance.now();
      let status = 0;
      let code: string | null = null;
      try {
        const res = await step();
        status = res.statusCode;
        if (status >= 400) code = errorCode(res.body);
      } catch (err) {
        code = err instanceof Error ? err.message : String(err);
      }
      samples.push({
        kind,
        at: started - t0,
        latencyMs: performance.now() - started,
        status,
        code,
      });
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    samples,
    /** Milliseconds since the load began. */
    now: () => performance.now() - t0,
    async stop() {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

/** The error code of a JSON error body, or of an error page (its `data-error-code`). */
function errorCode(body: string): string | null {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? null;
  } catch {
    return /data-error-code="([A-Z_]+)"/.exec(body)?.[1] ?? null;
  }
}

/** Resolves once `check` is true (polled every 20 ms), or rejects after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP proxy on a spare loopback port in front of `target`: `stall()` stops forwarding in both
 * directions (connections stay open, bytes wait, as with a frozen server), `resume()` lets the
 * held bytes through, `cut()` resets every connection and refuses new ones until `resume()`.
 */
export async function startProxy(target: { host: string; port: number }) {
  let mode: 'open' | 'stalled' | 'cut' = 'open';
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    if (mode === 'cut') {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    // Opened during a stall: piped on resume, not now (piping twice would send bytes twice).
    if (mode === 'open') join(pair);
  });
  const join = ([a, b]: [net.Socket, net.Socket]) => {
    a.pipe(b);
    b.pipe(a);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    stall() {
      mode = 'stalled';
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    resume() {
      const wasStalled = mode === 'stalled';
      mode = 'open';
      if (wasStalled) for (const pair of pairs) join(pair);
    },
    cut() {
      mode = 'cut';
      for (const [a, b] of pairs) {
        a.resetAndDestroy();
        b.destroy();
      }
      pairs.clear();
    },
    async close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
