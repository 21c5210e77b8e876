/**
 * @module bench/faults
 * The fault suite's scenario as figures (`npm run bench:faults`): a Warden built as `warden
 * serve` builds it, on a redis-server of its own, under a steady load of whoami, console and
 * sign-in requests; Redis is killed (then started again with its data) or paused (SIGSTOP, then
 * SIGCONT) for `--outage` seconds, or PostgreSQL (users in a database of its own, behind a TCP
 * proxy) stalls: connections stay open and nothing is answered. Prints, per fault: requests during the outage, latencies,
 * answers by status and error code, seconds until every signed-in user is back, calls that got
 * through to Redis while it was away, and heap growth.
 *
 *   npm run bench:faults                       # kill and pause, 5 s each, production timeouts
 *   npm run bench:faults -- --outage 10 --faults pause
 *
 * Warden runs in this process and requests go through Fastify's inject (no sockets), so the
 * figures are Warden's own and not the network's. Never part of `npm test`.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import pg from 'pg';
import { createClient } from 'redis';
import type { SessionStore } from '../src/sessions/session-store.js';
import {
  runLoad,
  type Sample,
  sleep,
  startProxy,
  startWarden,
  type Warden,
  waitFor,
} from '../test/faults/harness.js';
import { type Client, PASSWORD } from '../test/support/app.js';
import { startOwnRedis } from '../test/support/redis-server.js';
import { TEST_POSTGRES_URL } from '../test/support/services.js';
import { fmt, percentile, table } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    outage: { type: 'string', default: '5' },
    faults: { type: 'string', default: 'kill,pause,pg-stall' },
    whoami: { type: 'string', default: '8' },
  },
});
const OUTAGE_MS = Number(values.outage) * 1_000;
type Fault = 'kill' | 'pause' | 'pg-stall';
const FAULTS = values.faults.split(',') as Fault[];
const LABELS: Record<Fault, string> = {
  kill: 'Redis killed (SIGKILL), restarted',
  pause: 'Redis paused (SIGSTOP, SIGCONT)',
  'pg-stall': 'PostgreSQL stalled, resumed',
};
const WHOAMI_USERS = Number(values.whoami);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

interface Figures {
  fault: string;
  during: Sample[];
  recoverS: number;
  reached: number;
  heapGrowthMb: number;
  afterOk: number;
  afterTotal: number;
}

/** A PostgreSQL database of its own behind a proxy that can stall; dropped by `drop()`. */
async function ownPostgres() {
  const name = `warden_bench_faults_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const version = (await admin.query('show server_version')).rows[0].server_version as string;
  await admin.end();
  const target = new URL(TEST_POSTGRES_URL);
  const proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const url = new URL(TEST_POSTGRES_URL);
  url.port = String(proxy.port);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    proxy,
    version,
    async drop() {
      await proxy.close();
      const c = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

let postgresVersion = 'not used';

async function scenario(fault: Fault): Promise<Figures> {
  const own = await startOwnRedis({ persist: true });
  const db = fault === 'pg-stall' ? await ownPostgres() : undefined;
  if (db) postgresVersion = db.version;
  const reached = { calls: 0 };
  let w: Warden | undefined;
  try {
    w = await startWarden({
      // Production bounds: the fault suite shortens them, the bench keeps the defaults.
      env: {
        REDIS_URL: own.url,
        STORE_TIMEOUT: '500ms',
        DATABASE_TIMEOUT: '5s',
        LOG_LEVEL: 'warn',
        ...(db ? { DATABASE_URL: db.url } : {}),
      },
      wrapStore: (inner) => counted(inner, reached),
    });
    const warden = w;
    await warden.createUser('root@example.test', 'superuser');
    await warden.createUser('signer@example.test');
    const admin = warden.client();
    await admin.login('root@example.test');
    const people: Client[] = [];
    for (let i = 0; i < WHOAMI_USERS; i++) {
      await warden.createUser(`p${i}@example.test`);
      const c = warden.client();
      await c.login(`p${i}@example.test`);
      people.push(c);
    }
    const everyoneBack = async () => {
      for (const c of [...people, admin]) {
        if ((await c.get('/api/auth/session')).statusCode !== 200) return false;
      }
      return true;
    };

    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const load = runLoad(
      [
        ...people.map((c): [string, () => ReturnType<Client['get']>] => [
          'whoami',
          () => c.get('/api/auth/session'),
        ]),
        ['console', () => admin.get('/admin/sessions', 'json')],
        ['console page', () => admin.get('/admin/sessions', 'html')],
        [
          'sign-in',
          () =>
            warden
              .client()
              .postJson('/api/auth/login', { email: 'signer@example.test', password: PASSWORD }),
        ],
      ],
      10,
    );
    await sleep(2_000);

    const downAt = load.now();
    reached.calls = 0;
    if (fault === 'kill') await own.kill();
    else if (fault === 'pause') own.pause();
    else db?.proxy.stall();
    await sleep(OUTAGE_MS);
    const reachedDuring = reached.calls;
    gc();
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;

    const upAt = load.now();
    if (fault === 'kill') await own.start();
    else if (fault === 'pause') own.resume();
    else db?.proxy.resume();
    const recoveredMs = await waitFor(everyoneBack, 30_000, 'recovery').catch(() => Number.NaN);
    const backAt = load.now();
    await sleep(2_000);
    const samples = await load.stop();

    const after = samples.filter((s) => s.at > backAt);
    return {
      fault,
      // Started while the store was away, however long they took to be answered.
      during: samples.filter((s) => s.at > downAt && s.at < upAt),
      recoverS: recoveredMs / 1000,
      reached: reachedDuring,
      heapGrowthMb,
      afterOk: after.filter((s) => s.status === 200).length,
      afterTotal: after.length,
    };
  } finally {
    own.resume();
    db?.proxy.resume();
    await w?.close();
    await own.stop();
    await db?.drop();
  }
}

/** Counts the calls that reach the raw store (past the guard's breaker). */
function counted(inner: SessionStore, reached: { calls: number }): SessionStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        reached.calls += 1;
        return value.apply(target, args);
      };
    },
  });
}

function answersByKind(during: Sample[]): string {
  const counts = new Map<string, number>();
  for (const s of during) {
    const key = `${s.status}${s.code ? ` ${s.code}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n}`)
    .join('; ');
}

async function redisVersion(): Promise<string> {
  const own = await startOwnRedis();
  const c = createClient({ url: own.url });
  await c.connect();
  const info = await c.info('server');
  c.destroy();
  await own.stop();
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
}

const results: Figures[] = [];
for (const fault of FAULTS) results.push(await scenario(fault));
const redis = await redisVersion();

const signedIn = (s: Sample) => s.kind !== 'sign-in';
console.log(
  `\n## Faults\n\nA store away for ${OUTAGE_MS / 1000} s under load (${WHOAMI_USERS} whoami ` +
    "users, a console user on JSON and HTML, one sign-in loop; 10 ms between a user's " +
    'requests), default bounds (STORE_TIMEOUT 500ms, DATABASE_TIMEOUT 5s); users in SQLite for ' +
    `the Redis faults. ${os.cpus().length} cores, Node ${process.version}, Redis ${redis}, ` +
    `PostgreSQL ${postgresVersion}.\n`,
);
console.log(
  table(
    [
      'fault',
      'requests during',
      'per s',
      'p50 ms',
      'p99 ms',
      'worst ms',
      'signed-in 200',
      '500',
      'store calls let through',
      'recover s',
      'heap +MB',
      'ok after',
    ],
    results.map((r) => {
      const ms = r.during.map((s) => s.latencyMs);
      return [
        LABELS[r.fault as Fault],
        fmt(r.during.length),
        fmt(r.during.length / (OUTAGE_MS / 1000)),
        fmt(percentile(ms, 50), 1),
        fmt(percentile(ms, 99), 1),
        fmt(Math.max(...ms), 1),
        fmt(r.during.filter((s) => signedIn(s) && s.status === 200).length),
        fmt(r.during.filter((s) => s.status === 500).length),
        fmt(r.reached),
        fmt(r.recoverS, 2),
        fmt(r.heapGrowthMb, 1),
        `${fmt(r.afterOk)}/${fmt(r.afterTotal)}`,
      ];
    }),
  ),
);
console.log('\nAnswers during the outage, by status and error code:\n');
for (const r of results) console.log(`- ${r.fault}: ${answersByKind(r.during)}`);
process.exit(0);
