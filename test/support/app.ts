/**
 * A Warden app on a real store for route tests: SQLite in a temp dir, or PostgreSQL in a
 * database of its own (dropped after) with sessions in Redis under a key prefix of its own.
 * Requests go through `inject()` with a small cookie jar.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { createClient } from 'redis';
import { buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import type { Role, UserRow, UserStatus } from '../../src/db/schema.js';
import { createLogger } from '../../src/logger.js';
import { createTrackingClient } from '../../src/runtime.js';
import { RedisSessionStore } from '../../src/sessions/redis-store.js';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { SqlSessionStore } from '../../src/sessions/sql-store.js';
import { TrackedReads } from '../../src/sessions/tracked-reads.js';
import { hashPassword } from '../../src/users/passwords.js';
import { UserRepo } from '../../src/users/user-repo.js';
import {
  checkPostgres,
  checkRedis,
  gate,
  selectedStores,
  TEST_POSTGRES_URL,
  TEST_REDIS_URL,
} from './services.js';

export const STORE_KINDS = ['sqlite', 'redis+postgres'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export const PASSWORD = 'correct horse battery';
let passwordHash: Promise<string> | undefined;
/**
 * One scrypt hash shared by every test user, at a low cost: real hashing is deliberately
 * slow, and sign-in verifies with the N stored in the hash.
 */
export const testPasswordHash = () => {
  passwordHash ??= hashPassword(PASSWORD, { N: 2 ** 10 });
  return passwordHash;
};

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  database: Database;
  store: SessionStore;
  kind: StoreKind;
  redis?: ReturnType<typeof createClient>;
  prefix?: string;
  /** Validation's in-memory reads (Redis kind, as `warden serve` has them). */
  trackedReads?: TrackedReads;
  createUser(email: string, role?: Role, status?: UserStatus): Promise<UserRow>;
  client(): Client;
  /** Resolves once the history rows revocations answered before writing are written. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** Registers the suites for each selected store kind, skipping or failing when a service is missing. */
export async function storeKindsToRun(): Promise<{ kind: StoreKind; skip: string | null }[]> {
  const out: { kind: StoreKind; skip: string | null }[] = [];
  for (const kind of selectedStores(STORE_KINDS)) {
    if (kind === 'sqlite') {
      out.push({ kind, skip: null });
      continue;
    }
    const redis = await gate(`${kind} route tests`, () => checkRedis());
    const postgres = await gate(`${kind} route tests`, () => checkPostgres());
    for (const g of [redis, postgres]) {
      if (g.action === 'fail') throw new Error(`required service missing: ${g.reason}`);
    }
    const skip = [redis, postgres].find((g) => g.action === 'skip');
    out.push({ kind, skip: skip && skip.action !== 'run' ? skip.reason : null });
  }
  return out;
}

export async function makeApp(
  kind: StoreKind,
  opts: {
    env?: Record<string, string>;
    clock?: () => number;
    /** This instance's machine clock (the store clock corrects it). */
    localClock?: () => number;
    csrfValidityMs?: number;
    /** A Redis of the test's own (for fault tests); the shared one otherwise. */
    redisUrl?: string;
    /** Wraps the raw store, e.g. to add latency. */
    wrapStore?: (store: SessionStore) => SessionStore;
    /** Log lines go here (JSON, one per line) instead of nowhere. */
    logStream?: NodeJS.WritableStream;
    /** Keep validation's reads in memory as `warden serve` does (Redis, SQLite). @default true */
    trackReads?: boolean;
    /** SQLite: scans on a reader thread, as `warden serve` has them. @default true */
    readerThread?: boolean;
    /** Redis: how often the store collects what revocations set aside and left owed. */
    setAsideSweepMs?: number;
  } = {},
): Promise<TestApp> {
  const cleanups: (() => Promise<void>)[] = [];
  let config: Config;
  let database: Database;
  let store: SessionStore;
  let redis: ReturnType<typeof createClient> | undefined;
  let prefix: string | undefined;
  let trackedReads: TrackedReads | undefined;

  if (kind === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-test-'));
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    config = loadConfig({
      DATABASE_URL: path.join(dir, 'warden.db'),
      LOG_LEVEL: 'silent',
      // Several suites share two cores with Chromium; a loaded machine is not a store fault.
      STORE_TIMEOUT: '2s',
      ...opts.env,
    });
    database = openDatabase(config.database, { readerThread: opts.readerThread !== false });
    // As `warden serve` has it: sessions read for validation kept until written or committed
    // to by another connection.
    const memory =
      opts.trackReads !== false && database.dataVersion
        ? { dataVersion: database.dataVersion, maxEntries: 100_000 }
        : undefined;
    store = new SqlSessionStore(database.db, database.dialect, { memory, reads: database.reads });
  } else {
    const dbName = `warden_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    await admin.query(`create database ${dbName}`);
    await admin.end();
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await c.connect();
      await c.query(`drop database if exists ${dbName} with (force)`);
      await c.end();
    });
    const url = new URL(TEST_POSTGRES_URL);
    url.pathname = `/${dbName}`;
    const redisUrl = opts.redisUrl ?? TEST_REDIS_URL;
    config = loadConfig({
      DATABASE_URL: url.toString(),
      REDIS_URL: redisUrl,
      LOG_LEVEL: 'silent',
      // Several suites share two cores with Chromium; a loaded machine is not a store fault.
      STORE_TIMEOUT: '2s',
      ...opts.env,
    });
    database = openDatabase(config.database);
    redis = createClient({
      url: redisUrl,
      disableOfflineQueue: true,
      socket: { connectTimeout: 1_000, reconnectStrategy: (n) => Math.min(50 * 2 ** n, 500) },
    });
    redis.on('error', () => {});
    await redis.connect();
    prefix = `warden-test:${randomBytes(6).toString('hex')}:`;
    if (opts.trackReads !== false) trackedReads = await openTrackedReads(redisUrl, cleanups);
    store = redisStore(redis, prefix, database, config, trackedReads, opts.setAsideSweepMs);
    const r = redis;
    const p = prefix;
    cleanups.push(async () => {
      // A test may have stopped its own Redis; its keys die with that server (and the client
      // may not have noticed yet when this runs: then the scan fails, and that is fine).
      if (r.isReady) {
        try {
          for await (const keys of r.scanIterator({ MATCH: `${p}*`, COUNT: 1000 })) {
            if (keys.length > 0) await r.del(keys);
          }
        } catch (err) {
          if (!(err instanceof Error && /closed|offline/i.test(err.message))) throw err;
        }
      }
      r.destroy();
    });
  }
  await migrateToLatest(database.db, database.dialect);
  if (opts.wrapStore) store = opts.wrapStore(store);
  const app = await buildApp(config, {
    database,
    store,
    logger: opts.logStream ? createLogger({ logLevel: 'info' }, opts.logStream) : false,
    clock: opts.clock,
    localClock: opts.localClock,
    csrfValidityMs: opts.csrfValidityMs,
    redis,
    redisPrefix: prefix,
    trackedReads,
  });
  await app.ready();
  const repo = new UserRepo(database.db, database.dialect);

  return {
    app,
    config,
    database,
    store,
    kind,
    redis,
    prefix,
    trackedReads,
    async createUser(email, role = 'user', status = 'approved') {
      return repo.create({
        email,
        passwordHash: await testPasswordHash(),
        role,
        status,
        now: Date.now(),
      });
    },
    client: () => new Client(app),
    settled: () => app.warden.events.settled(),
    async close() {
      // The test's database and Redis keys go even when the app fails to close (a failed run
      // this session left four databases behind).
      try {
        await closeApp(app);
      } finally {
        try {
          await database.close();
        } finally {
          for (const c of cleanups.reverse()) await c();
        }
      }
    },
  };
}

/**
 * Closes an app as `warden serve` does after its grace: a connection that never sent a request
 * (a client's spare, opened ahead) otherwise holds Fastify's close until its socket times out,
 * past the test's hook timeout. Every socket here is the test's own.
 */
async function closeApp(app: FastifyInstance): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), 2_000);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}

/**
 * Another Warden instance on the same database and session store, and on Redis the same live
 * channel and cleanup lock (closed with `t`).
 */
export async function secondInstance(
  t: TestApp,
  opts: { localClock?: () => number; logStream?: NodeJS.WritableStream } = {},
): Promise<FastifyInstance> {
  // On Redis an instance of its own keeps its own tracked reads, as a second server would.
  const cleanups: (() => Promise<void>)[] = [];
  const trackedReads =
    t.redis && t.trackedReads ? await openTrackedReads(t.config.redisUrl!, cleanups) : undefined;
  const app = await buildApp(t.config, {
    database: t.database,
    store:
      t.redis && trackedReads
        ? redisStore(t.redis, t.prefix!, t.database, t.config, trackedReads)
        : t.store,
    logger: opts.logStream ? createLogger({ logLevel: 'info' }, opts.logStream) : false,
    localClock: opts.localClock,
    redis: t.redis,
    redisPrefix: t.prefix,
    trackedReads,
  });
  await app.ready();
  const close = t.close;
  t.close = async () => {
    await closeApp(app);
    for (const c of cleanups) await c();
    await close();
  };
  return app;
}

/** Validation's tracked reads on a connection of their own, as `warden serve` opens them. */
async function openTrackedReads(
  url: string,
  cleanups: (() => Promise<void>)[],
): Promise<TrackedReads> {
  const client = createTrackingClient(url);
  const tracked = new TrackedReads(client);
  await client.connect();
  cleanups.push(async () => {
    tracked.close();
    if (client.isOpen) client.destroy();
  });
  return tracked;
}

function redisStore(
  client: ReturnType<typeof createClient>,
  prefix: string,
  database: Database,
  config: Config,
  tracked: TrackedReads | undefined,
  setAsideSweepMs?: number,
): RedisSessionStore {
  const users = new UserRepo(database.db, database.dialect);
  return new RedisSessionStore({
    client,
    prefix,
    resolveUserIds: (f, options) => users.idsMatching(f, options),
    retentionMs: config.retentionMs,
    tracked,
    setAsideSweepMs,
  });
}

/** A browser-like client over inject(): keeps cookies, fetches CSRF tokens, follows nothing. */
export class Client {
  userAgent =
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

  /** Pass another client's cookies to act as the same browser against another instance. */
  constructor(
    readonly app: FastifyInstance,
    readonly cookies = new Map<string, string>(),
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** Keeps cookie values exactly as sent (still encoded), as a browser does. */
  #store(res: LightMyRequestResponse): void {
    const header = res.headers['set-cookie'];
    for (const line of Array.isArray(header) ? header : header ? [header] : []) {
      const [pair, ...attrs] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const maxAge = attrs.find((a) => /^max-age=/i.test(a));
      const expires = attrs.find((a) => /^expires=/i.test(a));
      const gone =
        value === '' ||
        (maxAge !== undefined && Number(maxAge.split('=')[1]) <= 0) ||
        (expires !== undefined && Date.parse(expires.slice(8)) < Date.now());
      if (gone) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(opts: {
    method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
    url: string;
    json?: unknown;
    form?: Record<string, string | string[]>;
    /** A body sent as it is, with the content type the headers give. */
    raw?: string;
    headers?: Record<string, string>;
    accept?: 'json' | 'html';
  }): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...opts.headers };
    if (this.cookies.size > 0) headers.cookie = this.cookieHeader();
    if (opts.accept === 'json') headers.accept = 'application/json';
    if (opts.accept === 'html') headers.accept = 'text/html';
    let payload: string | undefined = opts.raw;
    if (opts.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      payload = JSON.stringify(opts.json);
    } else if (opts.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.form)) {
        for (const one of Array.isArray(v) ? v : [v]) p.append(k, one);
      }
      payload = p.toString();
    }
    const res = await this.app.inject({ method: opts.method, url: opts.url, headers, payload });
    this.#store(res);
    return res;
  }

  get(url: string, accept?: 'json' | 'html') {
    return this.request({ method: 'GET', url, accept });
  }

  /** A CSRF token for this client's current session (or lack of one). */
  async csrf(): Promise<string> {
    const res = await this.get('/api/auth/csrf');
    return res.json().token as string;
  }

  async postJson(url: string, json: unknown = {}, opts: { csrf?: string | null } = {}) {
    const token = opts.csrf === undefined ? await this.csrf() : opts.csrf;
    return this.request({
      method: 'POST',
      url,
      json,
      headers: token ? { 'x-csrf-token': token } : {},
    });
  }

  async postForm(
    url: string,
    form: Record<string, string | string[]> = {},
    opts: { csrf?: string | null } = {},
  ) {
    const token = opts.csrf === undefined ? await this.csrf() : opts.csrf;
    return this.request({
      method: 'POST',
      url,
      form: token ? { _csrf: token, ...form } : form,
      accept: 'html',
    });
  }

  async login(email: string, password = PASSWORD) {
    const res = await this.postJson('/api/auth/login', { email, password });
    if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
    return res.json() as { user: { id: number }; session: { id: string } };
  }
}
