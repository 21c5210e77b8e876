/**
 * @module bench/scale
 * Sections 2–4 on seeded fleets: the console's queries at a small and a large fleet, the
 * operations (revoke a user, bulk revoke, revoke-matching, cleanup), Redis memory per
 * session and Warden's memory during an export. One stack at a time, each on stores of its
 * own (a fresh redis-server, a fresh PostgreSQL database or SQLite file).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createClient } from 'redis';
import { scriptName } from '../src/sessions/redis-store.js';
import { Client } from './lib/client.js';
import { createDatabase, ROOT, rssOf, run, startRedis, wardenCli } from './lib/procs.js';
import { fmt, median, percentile, table } from './lib/stats.js';
import {
  ADMIN_EMAIL,
  BENCH_PASSWORD,
  createSuperuser,
  sqliteFile,
  startWarden,
  type Warden,
  type WardenSetup,
  wardenEnv,
} from './lib/warden.js';
import { wrk } from './lib/wrk.js';

export interface ScaleOptions {
  sessions: number;
  users: number;
  samples: number;
  /** Stop sampling one query after this long (a slow query still gets its figures). */
  capSeconds: number;
  stacks: Array<'redis+postgres' | 'sqlite'>;
  operations: boolean;
  /** Sample the console queries (and seed the small fleet they are compared with). @default true */
  console?: boolean;
  log: (line: string) => void;
}

export interface ScaleReport {
  console: string;
  operations: string;
  memory: string;
  redisBytesPerSession?: number;
}

interface QueryFigures {
  n: number;
  p50: number;
  p95: number;
  max: number;
  bytes: number;
}

interface Fleet {
  warden: Warden;
  seedSeconds: number;
  redisBytes?: number;
  sessions: number;
  drop(): Promise<void>;
  redisUrl?: string;
}

async function openFleet(
  stack: 'redis+postgres' | 'sqlite',
  users: number,
  sessions: number,
  tag: string,
  log: (line: string) => void,
): Promise<Fleet> {
  const drops: Array<() => Promise<void>> = [];
  let setup: WardenSetup;
  let redisUrl: string | undefined;
  if (stack === 'redis+postgres') {
    const redis = await startRedis();
    // A name of this run's own: two benches at once must never drop each other's database.
    const db = await createDatabase(`warden_bench_${tag}_${randomBytes(4).toString('hex')}`);
    drops.push(db.drop, redis.stop);
    redisUrl = redis.url;
    setup = { name: stack, env: { REDIS_URL: redis.url, DATABASE_URL: db.url } };
  } else {
    setup = { name: stack, env: { DATABASE_URL: sqliteFile(tag) } };
  }
  await createSuperuser(setup, ADMIN_EMAIL);
  const before = redisUrl ? await usedMemory(redisUrl) : 0;
  const started = performance.now();
  log(`${stack}: seeding ${users} users, ${sessions} sessions`);
  await wardenCli(
    ['seed-demo', '--users', String(users), '--sessions', String(sessions)],
    wardenEnv(setup, 0),
  );
  const seedSeconds = (performance.now() - started) / 1000;
  const redisBytes = redisUrl ? (await usedMemory(redisUrl)) - before : undefined;
  log(`${stack}: seeded in ${seedSeconds.toFixed(1)} s`);
  const warden = await startWarden(setup);
  return {
    warden,
    seedSeconds,
    redisBytes,
    sessions,
    redisUrl,
    async drop() {
      await warden.stop();
      for (const d of drops.reverse()) await d();
    },
  };
}

export async function usedMemory(url: string): Promise<number> {
  const client = createClient({ url });
  await client.connect();
  const info = await client.info('memory');
  client.destroy();
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

/** Emails of the fleet, to choose filters matching one, about 100 and about 10,000 users. */
async function emails(warden: Warden): Promise<string[]> {
  const url = warden.env.DATABASE_URL;
  if (url.startsWith('postgres')) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query('SELECT email_normalized AS e FROM users');
    await client.end();
    return rows.map((r) => r.e as string);
  }
  const db = new Database(url, { readonly: true });
  const rows = db.prepare('SELECT email_normalized AS e FROM users').all() as Array<{ e: string }>;
  db.close();
  return rows.map((r) => r.e);
}

/** Filters matching one user, 0.1% and 10% of them (100 and 10,000 of 100,000 users). */
function chooseFilters(all: string[]): { one: string; hundred: string; tenThousand: string } {
  const demo = all.filter((e) => e.endsWith('@example.test') && !e.startsWith('bench-'));
  const candidates = new Set<string>();
  for (const e of demo.slice(0, 5_000)) {
    const local = e.split('@')[0];
    const [first, rest] = local.split('.');
    candidates.add(`${first}.${rest.replace(/\d+$/, '')}`);
    candidates.add(`${first}.`);
    candidates.add(first.slice(0, 2));
    candidates.add(first.slice(0, 1));
  }
  // Only strings absent from the shared domain: "m" would match every demo address.
  const usable = [...candidates].filter((c) => !'@example.test'.includes(c));
  const counted = usable.map((c) => ({ c, n: demo.filter((e) => e.includes(c)).length }));
  const closest = (target: number) =>
    counted.reduce((a, b) =>
      Math.abs(Math.log(b.n / target)) < Math.abs(Math.log(a.n / target)) ? b : a,
    ).c;
  return {
    one: demo[Math.floor(demo.length / 2)],
    hundred: closest(100),
    tenThousand: closest(10_000),
  };
}

function day(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

function queries(f: ReturnType<typeof chooseFilters>): Array<[string, string]> {
  const q = (params: Record<string, string>) => `/admin/sessions?${new URLSearchParams(params)}`;
  return [
    ['first page, unfiltered', '/admin/sessions'],
    ['status active', q({ status: 'active' })],
    ['status expired', q({ status: 'expired' })],
    ['role admin', q({ role: 'admin' })],
    ['email: one user', q({ email: f.one })],
    [`email: 0.1% of users ("${f.hundred}")`, q({ email: f.hundred })],
    [`email: 10% of users ("${f.tenThousand}")`, q({ email: f.tenThousand })],
    ['created in one week', q({ created_from: day(-21), created_to: day(-14) })],
    ['page 100, unfiltered', q({ page: '100' })],
    ['status active + role admin', q({ status: 'active', role: 'admin' })],
    ['stats page', '/admin/sessions/stats'],
    ['analytics page', '/admin/analytics'],
  ];
}

const WARMUP_REQUESTS = 10;

async function sample(
  client: Client,
  path: string,
  samples: number,
  capSeconds: number,
): Promise<QueryFigures> {
  // Unmeasured first: both fleets are sampled at steady state (compiled code, warm caches), so
  // their ratio is the fleet's cost and not the first requests after a start.
  for (let i = 0; i < WARMUP_REQUESTS; i++) await (await client.get(path, 'text/html')).text();
  const times: number[] = [];
  let bytes = 0;
  const deadline = performance.now() + capSeconds * 1000;
  for (let i = 0; i < samples && (i < 3 || performance.now() < deadline); i++) {
    const t0 = performance.now();
    const res = await client.get(path, 'text/html');
    const body = await res.text();
    times.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${body.slice(0, 300)}`);
    bytes = body.length;
  }
  return {
    n: times.length,
    p50: median(times),
    p95: percentile(times, 95),
    max: Math.max(...times),
    bytes,
  };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0];
}

async function makeSessions(
  warden: Warden,
  userId: number,
  count: number,
  expired = false,
): Promise<string[]> {
  const { stdout } = await run(
    'node',
    [
      '--import',
      'tsx',
      'bench/lib/make-sessions.ts',
      String(userId),
      String(count),
      ...(expired ? ['expired'] : []),
    ],
    { cwd: ROOT, env: { ...process.env, ...warden.env }, maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as string[];
}

const SIGN_IN_EMAIL = 'qq0@zz.test';
// Revoke-user and bulk revoke runs, each of 1,000 fresh sessions; the table gives the median.
// With the runs before them, ten of each: the Ended tab, which must list every run's sessions,
// counts up to 10,000.
const REVOKE_SAMPLES = 7;
// Runs before those, unmeasured but reported: as each console query gets 10 before its samples,
// a revocation is measured on a server that has run one before. The first of a process compiles
// its path (23–35 ms at the client against 14–20 once warm, on the same fleet), and with five
// samples in all it had made up most of the median.
const REVOKE_WARMUP = 3;

async function signInTimes(base: string, count: number, email = ADMIN_EMAIL): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const c = new Client(base);
    const t0 = performance.now();
    await c.wardenLogin(email, BENCH_PASSWORD);
    times.push(performance.now() - t0);
  }
  return times;
}

async function operations(
  fleet: Fleet,
  filter: string,
  expiredCount: number,
  log: (l: string) => void,
): Promise<string[][]> {
  const { warden } = fleet;
  const admin = warden.admin;
  const rows: string[][] = [];
  const name = warden.name;

  // Two demo-free users of the bench's own, each with 1,000 sessions.
  await createSuperuser({ name, env: warden.env }, 'bench-many@example.test');
  await createSuperuser({ name, env: warden.env }, 'bench-bulk@example.test');
  const ids = await emails(warden);
  void ids;
  const userIdOf = async (email: string) => {
    const res = await admin.get(`/admin/users?email=${encodeURIComponent(email)}`);
    const body = (await res.json()) as { items?: Array<{ id: number; email: string }> };
    const found = body.items?.find((u) => u.email === email);
    if (!found) throw new Error(`no user ${email}`);
    return found.id;
  };
  const many = await userIdOf('bench-many@example.test');
  const bulk = await userIdOf('bench-bulk@example.test');

  // Sensitive console actions want the password again within a few minutes of each other
  // (step-up); the slow console section before this can outlast that window.
  const stepUp = () => admin.postJson('/api/auth/step-up', { password: BENCH_PASSWORD });
  // One revocation is one sample on a shared machine: a few, each of 1,000 fresh sessions.
  const ms1: number[] = [];
  const ms2: number[] = [];
  // From the request to the Ended tab listing the revoked sessions: a revocation answers before
  // it writes their history rows, and the tab waits for them (so the next operation is measured
  // alone too).
  const recorded1: number[] = [];
  const recorded2: number[] = [];
  let revoked1 = 0;
  let revoked2 = 0;
  const endedOf = (email: string) => async () => {
    const res = await admin.get(`/admin/sessions/ended?email=${encodeURIComponent(email)}`);
    const body = (await res.json()) as { total?: number };
    if (res.status !== 200) throw new Error(`ended tab: ${res.status}`);
    return body.total ?? 0;
  };
  const cold1: number[] = [];
  const cold2: number[] = [];
  for (let i = 0; i < REVOKE_WARMUP + REVOKE_SAMPLES; i++) {
    await makeSessions(warden, many, 1_000);
    const bulkIds = await makeSessions(warden, bulk, 1_000);
    await stepUp();
    const [r1, t1] = await timed(() =>
      admin.postJson<{ counts: { revoked: number } }>(`/admin/sessions/revoke-user/${many}`, {}),
    );
    const [listed1, h1] = await timed(endedOf('bench-many@example.test'));
    const [r2, t2] = await timed(() =>
      admin.postJson<{ counts: { revoked: number } }>('/admin/sessions/bulk-revoke', {
        ids: bulkIds,
      }),
    );
    const [listed2, h2] = await timed(endedOf('bench-bulk@example.test'));
    // Every sample so far revoked 1,000 of each user's sessions, and the tab must list them all.
    if (Math.min(listed1, listed2) < (i + 1) * 1_000) {
      throw new Error(`the Ended tab lists ${listed1} and ${listed2} endings after ${i + 1} runs`);
    }
    if (i < REVOKE_WARMUP) {
      cold1.push(t1);
      cold2.push(t2);
      continue;
    }
    ms1.push(t1);
    ms2.push(t2);
    recorded1.push(t1 + h1);
    recorded2.push(t2 + h2);
    revoked1 = r1.counts.revoked;
    revoked2 = r2.counts.revoked;
  }
  const list = (ms: number[]) => ms.map((m) => fmt(m, 1)).join(', ');
  const each = (ms: number[]) => `median of ${ms.length}; each: ${list(ms)}`;
  const warm = (ms: number[]) => `; ${ms.length} unmeasured before: ${list(ms)}`;
  const listed = (ms: number[]) => `; in the Ended tab after ${fmt(median(ms), 1)} ms`;
  rows.push([
    name,
    'revoke all sessions of one user',
    fmt(revoked1),
    fmt(median(ms1), 1),
    `< 20 ms; ${each(ms1)}${warm(cold1)}${listed(recorded1)}`,
  ]);
  rows.push([
    name,
    'bulk revoke of selected sessions',
    fmt(revoked2),
    fmt(median(ms2), 1),
    `< 100 ms; ${each(ms2)}${warm(cold2)}${listed(recorded2)}`,
  ]);
  log(`${name}: revoke-user ${each(ms1)} ms, bulk ${each(ms2)} ms`);
  log(`${name}: unmeasured before: revoke-user ${list(cold1)}, bulk ${list(cold2)}`);
  log(`${name}: in the Ended tab after: revoke-user ${each(recorded1)}, bulk ${each(recorded2)}`);

  // Revoke-matching about 100,000 sessions while someone signs in, one after another. A
  // failure is a row of its own: the cleanup below is still measured.
  await createSuperuser({ name, env: warden.env }, SIGN_IN_EMAIL);
  try {
    await revokeMatching(fleet, filter, stepUp, rows, log);
  } catch (err) {
    log(`${name}: revoke-matching failed: ${err}`);
    rows.push([name, 'revoke-matching stopped', '', '', String(err).slice(0, 300)]);
  }

  // Cleanup of a million expired sessions, with a validation load beside it.
  await cleanup(fleet, userIdOf, expiredCount, stepUp, rows, log);
  return rows;
}

async function revokeMatching(
  fleet: Fleet,
  filter: string,
  stepUp: () => Promise<unknown>,
  rows: string[][],
  log: (l: string) => void,
): Promise<void> {
  const { warden } = fleet;
  const { admin, name } = warden;
  const idle = await signInTimes(warden.base, 5, SIGN_IN_EMAIL);
  const path = `/admin/sessions/revoke-matching?email=${encodeURIComponent(filter)}`;
  const { total } = (await (await admin.get(path)).json()) as { total: number };
  let revoking = true;
  const during: number[] = [];
  // Sign-ins by a user no email filter matches, so they do not change the confirmed count.
  const signIns = (async () => {
    while (revoking) during.push(...(await signInTimes(warden.base, 1, SIGN_IN_EMAIL)));
  })().catch(() => {});
  await stepUp();
  const [r3, ms3] = await timed(() =>
    admin.postJson<{ counts: { revoked: number; failed: number } }>(path, { confirm: total }),
  ).finally(() => {
    revoking = false;
  });
  await signIns;
  rows.push([
    name,
    `revoke-matching (email "${filter}", ${fmt(total)} matching)`,
    `${fmt(r3.counts.revoked)}${r3.counts.failed ? ` (+${fmt(r3.counts.failed)} failed)` : ''}`,
    fmt(ms3),
    `${fmt(r3.counts.revoked / (ms3 / 1000))}/s; sign-ins during: ${during.length}, max ${fmt(Math.max(...during))} ms (idle median ${fmt(median(idle))} ms)`,
  ]);
  log(`${name}: revoke-matching ${r3.counts.revoked} in ${ms3.toFixed(0)} ms`);
}

async function cleanup(
  fleet: Fleet,
  userIdOf: (email: string) => Promise<number>,
  expiredCount: number,
  stepUp: () => Promise<unknown>,
  rows: string[][],
  log: (l: string) => void,
): Promise<void> {
  const { warden } = fleet;
  const { admin, name } = warden;
  await createSuperuser({ name, env: warden.env }, 'bench-expired@example.test');
  const expiredUser = await userIdOf('bench-expired@example.test');
  log(`${name}: adding ${expiredCount} expired sessions`);
  await makeSessions(warden, expiredUser, expiredCount, true);
  const user = new Client(warden.base);
  await user.wardenLogin(ADMIN_EMAIL, BENCH_PASSWORD);
  const url = `${warden.base}/api/auth/session`;
  const idleLoad = await wrk({ url, cookie: user.cookie, seconds: 5 });
  const redis = fleet.redisUrl ? createClient({ url: fleet.redisUrl }) : undefined;
  // The bench stops its redis-server at the end, maybe before this client is gone.
  redis?.on('error', () => {});
  await redis?.connect();
  // Every command of 1 ms or more is kept, to say how far under 10 ms the scripts stay.
  await redis?.sendCommand(['CONFIG', 'SET', 'slowlog-log-slower-than', '1000']);
  await redis?.sendCommand(['CONFIG', 'SET', 'slowlog-max-len', '100000']);
  await redis?.sendCommand(['SLOWLOG', 'RESET']);
  let cleaning = true;
  const duringP99: number[] = [];
  const loadDuring = (async () => {
    while (cleaning) {
      const r = await wrk({ url, cookie: user.cookie, seconds: 2 }).catch(() => null);
      if (r) duringP99.push(r.p99Ms);
    }
  })();
  await stepUp();
  const [r4, ms4] = await timed(() =>
    admin.postJson<{ removed: number }>('/admin/sessions/cleanup-expired', {}),
  )
    .catch((err) => {
      redis?.destroy();
      throw err;
    })
    .finally(() => {
      cleaning = false;
    });
  await loadDuring;
  let slow = 'n/a (SQL store)';
  if (redis) {
    // The bench's own commands (this connection's SLOWLOG and CONFIG) are not Warden's.
    const info = String(await redis.sendCommand(['CLIENT', 'INFO']));
    const own = /\baddr=(\S+)/.exec(info)?.[1];
    const logged = ((await redis.sendCommand(['SLOWLOG', 'GET', '100000'])) as unknown[][]).filter(
      (e) => String(e[4]) !== own,
    );
    const entries = logged.filter((e) => Number(e[2]) >= 10_000);
    const over1ms = logged.length;
    const worst = logged.reduce<unknown[] | undefined>(
      (m, e) => (!m || Number(e[2]) > Number(m[2]) ? e : m),
      undefined,
    );
    // Which command: its name, or for EVALSHA which of the store's scripts (the other
    // arguments are keys and session ids).
    const what = (entry: unknown[]): string => {
      const [command = '?', sha = ''] = (entry[3] as unknown[]).map(String);
      return (command.toUpperCase() === 'EVALSHA' && scriptName(sha)) || command;
    };
    const byName = new Map<string, number>();
    for (const name of entries.map(what)) byName.set(name, (byName.get(name) ?? 0) + 1);
    const named = [...byName].map(([n, c]) => `${n} ${c}`).join(', ');
    slow = `${entries.length} commands ≥ 10 ms${named ? ` (${named})` : ''}, ${over1ms} ≥ 1 ms${worst ? `, worst ${fmt(Number(worst[2]) / 1000, 1)} ms (${what(worst)})` : ''}`;
    redis.destroy();
  }
  rows.push([
    name,
    'cleanup of expired sessions',
    fmt(r4.removed),
    fmt(ms4),
    `${fmt(r4.removed / (ms4 / 1000))}/s; SLOWLOG: ${slow}; validation p99 ${fmt(idleLoad.p99Ms, 2)} ms idle, during cleanup median ${fmt(median(duringP99), 2)} / worst ${fmt(Math.max(...duringP99), 2)} ms over ${duringP99.length} 2-s runs`,
  ]);
  log(`${name}: cleanup ${r4.removed} in ${ms4.toFixed(0)} ms`);
}

async function exportRss(fleet: Fleet, filter: string): Promise<string> {
  const { warden } = fleet;
  const pid = warden.child.pid!;
  const before = rssOf(pid);
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, 100);
  const t0 = performance.now();
  const res = await warden.admin.get(
    `/admin/sessions/export.csv?email=${encodeURIComponent(filter)}`,
    'text/csv',
  );
  const body = await res.text();
  clearInterval(timer);
  const rows = body.split('\n').length - 2;
  return `${warden.name}: exporting ${fmt(rows)} rows (${fmt(body.length / 2 ** 20, 1)} MiB CSV) took ${fmt(performance.now() - t0)} ms; Warden RSS ${fmt(before / 2 ** 20)} MiB before, peak ${fmt(peak / 2 ** 20)} MiB during.`;
}

export async function runScale(opts: ScaleOptions): Promise<ScaleReport> {
  const consoleRows: string[][] = [];
  const opRows: string[][] = [];
  const memory: string[] = [];
  const seeds: string[] = [];
  let redisBytesPerSession: number | undefined;

  for (const stack of opts.stacks) {
    const small = {
      users: Math.max(100, opts.users / 100),
      sessions: Math.max(1_000, opts.sessions / 100),
    };
    const figures = new Map<string, { small?: QueryFigures; large?: QueryFigures }>();
    // Operations or memory alone need only the full fleet, not the console's small one.
    const scales = opts.console === false ? (['large'] as const) : (['small', 'large'] as const);
    for (const scale of scales) {
      const size = scale === 'small' ? small : { users: opts.users, sessions: opts.sessions };
      const tag = `${stack === 'sqlite' ? 'sqlite' : 'rpg'}_${scale}`;
      const fleet = await openFleet(stack, size.users, size.sessions, tag, opts.log);
      try {
        seeds.push(
          `${stack}: seed-demo ${fmt(size.users)} users / ${fmt(size.sessions)} sessions in ${fmt(fleet.seedSeconds, 1)} s`,
        );
        if (fleet.redisBytes !== undefined && scale === 'large') {
          redisBytesPerSession = fleet.redisBytes / size.sessions;
          memory.push(
            `Warden (Redis store): used_memory grew by ${fmt(fleet.redisBytes / 2 ** 20)} MiB over ${fmt(size.sessions)} sessions = **${fmt(redisBytesPerSession)} bytes per session**, indexes included.`,
          );
        }
        const filters = chooseFilters(await emails(fleet.warden));
        for (const [label, path] of opts.console === false ? [] : queries(filters)) {
          // The label names the filter; the key must match across fleet sizes.
          const key = label.replace(/ \(".*"\)$/, '');
          const f = await sample(fleet.warden.admin, path, opts.samples, opts.capSeconds);
          const entry = figures.get(key) ?? {};
          entry[scale] = f;
          figures.set(key, entry);
          opts.log(
            `${stack} ${scale} ${label}: n=${f.n} p50 ${f.p50.toFixed(1)} p95 ${f.p95.toFixed(1)} ms`,
          );
        }
        if (scale === 'large') {
          memory.push(await exportRss(fleet, filters.tenThousand));
          if (opts.operations) {
            // A failure is a figure too: the row says what broke, and the other stacks still run.
            try {
              opRows.push(
                ...(await operations(fleet, filters.tenThousand, opts.sessions, opts.log)),
              );
            } catch (err) {
              opts.log(`${stack}: operations failed: ${err}`);
              opRows.push([stack, 'operations stopped', '', '', String(err).slice(0, 300)]);
            }
          }
        }
      } finally {
        await fleet.drop();
      }
    }
    for (const [label, { small: s, large: l }] of figures) {
      const verdict =
        l && s ? (l.p95 < 50 && l.p95 <= 2 * Math.max(s.p95, 1) ? 'met' : 'missed') : 'n/a';
      consoleRows.push([
        stack,
        label,
        s ? fmt(s.p95, 1) : '',
        l ? fmt(l.p50, 1) : '',
        l ? fmt(l.p95, 1) : '',
        l ? fmt(l.max) : '',
        l ? `${l.n}` : '',
        s && l ? `${fmt(l.p95 / s.p95, 1)}×` : '',
        verdict,
      ]);
    }
  }

  return {
    console: [
      seeds.map((s) => `- ${s}`).join('\n'),
      '',
      table(
        [
          'stack',
          'query',
          `p95 ms at ${fmt(opts.sessions / 100)}`,
          `p50 ms at ${fmt(opts.sessions)}`,
          `p95 ms at ${fmt(opts.sessions)}`,
          'max ms',
          'samples',
          'growth',
          'target (p95 < 50 ms, ≤ 2× small)',
        ],
        consoleRows,
      ),
    ].join('\n'),
    operations: table(['stack', 'operation', 'sessions', 'ms', 'notes'], opRows),
    memory: memory.map((m) => `- ${m}`).join('\n'),
    redisBytesPerSession,
  };
}
