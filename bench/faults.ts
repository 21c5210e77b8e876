/**
 * @module bench/faults
 * The fault suite's scenario as figures (`npm run bench:faults`): a Warden built as `warden
 * serve` builds it, on a redis-server of its own, under a steady load of whoami, console and
 * sign-in requests; Redis is killed (then started again with its data) or paused (SIGSTOP, then
 * SIGCONT) for `--outage` seconds. Prints, per fault: requests during the outage, latencies,
 * answers by status and error code, seconds until every signed-in user is back, calls that got
 * through to Redis while it was away, and heap growth.
 *
 *   npm run bench:faults                       # kill and pause, 5 s each, production timeouts
 *   npm run bench:faults -- --outage 10 --faults pause
 *
 * Warden runs in this process and requests go through Fastify's inject (no sockets), so the
 * figures are Warden's own and not the network's. Never part of `npm test`.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createClient } from 'redis';
import type { SessionStore } from '../src/sessions/session-store.js';
import {
  runLoad,
  type Sample,
  sleep,
  startWarden,
  type Warden,
  waitFor,
} from '../test/faults/harness.js';
import { type Client, PASSWORD } from '../test/support/app.js';
import { startOwnRedis } from '../test/support/redis-server.js';
import { fmt, percentile, table } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    outage: { type: 'string', default: '5' },
    faults: { type: 'string', default: 'kill,pause' },
    whoami: { type: 'string', default: '8' },
  },
});
const OUTAGE_MS = Number(values.outage) * 1_000;
const FAULTS = values.faults.split(',') as Array<'kill' | 'pause'>;
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

async function scenario(fault: 'kill' | 'pause'): Promise<Figures> {
  const own = await startOwnRedis({ persist: true });
  const reached = { calls: 0, counting: false };
  let w: Warden | undefined;
  try {
    w = await startWarden({
      // Production bounds: the fault suite shortens them, the bench keeps the defaults.
      env: { REDIS_URL: own.url, STORE_TIMEOUT: '500ms', LOG_LEVEL: 'warn' },
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
    else own.pause();
    await sleep(OUTAGE_MS);
    const reachedDuring = reached.calls;
    gc();
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;

    const upAt = load.now();
    if (fault === 'kill') await own.start();
    else own.resume();
    const recoveredMs = await waitFor(everyoneBack, 30_000, 'recovery').catch(() => Number.NaN);
    const backAt = load.now();
    await sleep(2_000);
    const samples = await load.stop();

    const after = samples.filter((s) => s.at > backAt);
    return {
      fault,
      during: samples.filter((s) => s.at > downAt && s.at + s.latencyMs < upAt),
      recoverS: recoveredMs / 1000,
      reached: reachedDuring,
      heapGrowthMb,
      afterOk: after.filter((s) => s.status === 200).length,
      afterTotal: after.length,
    };
  } finally {
    own.resume();
    await w?.close();
    await own.stop();
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

async function versions(): Promise<{ redis: string; postgres: string }> {
  const own = await startOwnRedis();
  const c = createClient({ url: own.url });
  await c.connect();
  const info = await c.info('server');
  c.destroy();
  await own.stop();
  const redis = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  return { redis, postgres: 'not used (users in SQLite)' };
}

const results: Figures[] = [];
for (const fault of FAULTS) results.push(await scenario(fault));
const v = await versions();

const signedIn = (s: Sample) => s.kind !== 'sign-in';
console.log(
  `\n## Faults\n\nRedis ${OUTAGE_MS / 1000} s away under load (${WHOAMI_USERS} whoami users, ` +
    "a console user on JSON and HTML, one sign-in loop; 10 ms between a user's requests), " +
    `STORE_TIMEOUT 500ms. ${os.cpus().length} cores, Node ${process.version}, Redis ${v.redis}, ` +
    `PostgreSQL ${v.postgres}.\n`,
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
      'calls to Redis',
      'recover s',
      'heap +MB',
      'ok after',
    ],
    results.map((r) => {
      const ms = r.during.map((s) => s.latencyMs);
      return [
        r.fault === 'kill' ? 'kill (SIGKILL, restart)' : 'pause (SIGSTOP, SIGCONT)',
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
