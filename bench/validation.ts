/**
 * @module bench/validation
 * Section 1: GET /api/auth/session with a valid cookie, 50 connections, Warden on each store
 * against the peer stacks, all on the bench's own Redis. Rounds are interleaved (every target
 * once per round, in a rotating order), and ratios are taken within a round.
 */
import { Client } from './lib/client.js';
import { type Proc, rssOf, sparePort, startProcess } from './lib/procs.js';
import { fmt, median, table } from './lib/stats.js';
import { startWarden, type Warden, type WardenSetup } from './lib/warden.js';
import { type LoadResult, wrk } from './lib/wrk.js';

export interface Target {
  name: string;
  url: string;
  cookie: string;
  pid: number;
  /** Redis commands one validation sends (from the code, checked by the run's INFO delta). */
  kind: 'warden' | 'peer';
}

export interface ValidationOptions {
  redisUrl: string;
  wardens: WardenSetup[];
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  log: (line: string) => void;
}

export interface ValidationReport {
  markdown: string;
  /** Median requests/s and p99 per target, for other sections. */
  medians: Map<string, { rps: number; p99Ms: number }>;
  wardens: Warden[];
  peers: Proc[];
}

const PEERS: Array<{ name: string; file: string; rolling: boolean }> = [
  { name: 'express-session (default)', file: 'express-session.mjs', rolling: false },
  { name: 'express-session (rolling)', file: 'express-session.mjs', rolling: true },
  { name: '@fastify/session (rolling: false)', file: 'fastify-session.mjs', rolling: false },
  { name: '@fastify/session (rolling, default)', file: 'fastify-session.mjs', rolling: true },
  { name: 'Fastify, one Redis GET', file: 'fastify-get.mjs', rolling: false },
  { name: 'Fastify, constant answer', file: 'fastify-constant.mjs', rolling: false },
];
export const ONE_GET = 'Fastify, one Redis GET';
export const FASTIFY_ROLLING = '@fastify/session (rolling, default)';

async function startPeer(spec: (typeof PEERS)[number], redisUrl: string): Promise<[Proc, Target]> {
  const port = await sparePort();
  const proc = await startProcess(`peer-${port}`, 'node', [`bench/peers/${spec.file}`], port, {
    PORT: String(port),
    REDIS_URL: redisUrl,
    ROLLING: spec.rolling ? '1' : '0',
  });
  const client = new Client(`http://127.0.0.1:${port}`);
  await client.get('/login');
  const check = await client.get('/session');
  if (check.status !== 200) throw new Error(`${spec.name}: /session answered ${check.status}`);
  return [
    proc,
    {
      name: spec.name,
      url: `http://127.0.0.1:${port}/session`,
      cookie: client.cookie,
      pid: proc.child.pid!,
      kind: 'peer',
    },
  ];
}

export async function startTargets(
  opts: Pick<ValidationOptions, 'redisUrl' | 'wardens'>,
): Promise<{ targets: Target[]; wardens: Warden[]; peers: Proc[] }> {
  const wardens: Warden[] = [];
  const targets: Target[] = [];
  for (const setup of opts.wardens) {
    const w = await startWarden(setup);
    wardens.push(w);
    // A session of its own for the load, so the admin's stays free for other sections.
    const user = new Client(w.base);
    await user.wardenLogin('bench-admin@example.test', 'bench-password-1234');
    const check = await user.get('/api/auth/session');
    if (check.status !== 200) throw new Error(`${w.name}: /api/auth/session ${check.status}`);
    targets.push({
      name: `Warden, ${w.name}`,
      url: `${w.base}/api/auth/session`,
      cookie: user.cookie,
      pid: w.child.pid!,
      kind: 'warden',
    });
  }
  const peers: Proc[] = [];
  for (const spec of PEERS) {
    const [proc, target] = await startPeer(spec, opts.redisUrl);
    peers.push(proc);
    targets.push(target);
  }
  return { targets, wardens, peers };
}

export async function runValidation(opts: ValidationOptions): Promise<ValidationReport> {
  const { targets, wardens, peers } = await startTargets(opts);
  const results = new Map<string, LoadResult[]>(targets.map((t) => [t.name, []]));
  const ratios = new Map<string, { oneGet: number[]; rolling: number[] }>();
  const rss = new Map<string, number>();

  for (let round = 0; round < opts.rounds; round++) {
    // Rotate the order so no target always runs first (cold) or last (hot machine).
    const order = targets.map((_, i) => targets[(i + round) % targets.length]);
    const byName = new Map<string, LoadResult>();
    for (const t of order) {
      await wrk({ url: t.url, cookie: t.cookie, seconds: opts.warmupSeconds });
      let peakRss = 0;
      const sampler = setInterval(() => {
        peakRss = Math.max(peakRss, rssOf(t.pid));
      }, 500);
      const r = await wrk({ url: t.url, cookie: t.cookie, seconds: opts.seconds });
      clearInterval(sampler);
      rss.set(t.name, Math.max(rss.get(t.name) ?? 0, peakRss));
      if (r.non2xx > 0 || r.errors > 0) {
        throw new Error(`${t.name}: ${r.non2xx} non-2xx answers, ${r.errors} socket errors`);
      }
      results.get(t.name)!.push(r);
      byName.set(t.name, r);
      opts.log(
        `round ${round + 1} ${t.name}: ${fmt(r.rps)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms`,
      );
    }
    for (const t of targets.filter((x) => x.kind === 'warden')) {
      const mine = byName.get(t.name)!.rps;
      const entry = ratios.get(t.name) ?? { oneGet: [], rolling: [] };
      entry.oneGet.push(mine / byName.get(ONE_GET)!.rps);
      entry.rolling.push(mine / byName.get(FASTIFY_ROLLING)!.rps);
      ratios.set(t.name, entry);
    }
  }

  const medians = new Map<string, { rps: number; p99Ms: number }>();
  for (const t of targets) {
    const rs = results.get(t.name)!;
    medians.set(t.name, {
      rps: median(rs.map((r) => r.rps)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
    });
  }
  const worstPeerP99 = Math.min(
    ...targets
      .filter((t) => t.kind === 'peer' && t.name !== 'Fastify, constant answer')
      .map((t) => medians.get(t.name)!.p99Ms),
  );

  const rows = targets.map((t) => {
    const rs = results.get(t.name)!;
    const m = medians.get(t.name)!;
    const ratio = ratios.get(t.name);
    return [
      t.name,
      fmt(m.rps),
      rs.map((r) => fmt(r.rps)).join(' / '),
      fmt(median(rs.map((r) => r.p50Ms)), 2),
      fmt(m.p99Ms, 2),
      ratio ? `${fmt(median(ratio.oneGet), 2)}×` : '',
      ratio ? `${fmt(median(ratio.rolling), 2)}×` : '',
      fmt((rss.get(t.name) ?? 0) / 1024 / 1024),
    ];
  });
  const markdown = [
    table(
      [
        'stack',
        'req/s (median)',
        'rounds',
        'p50 ms',
        'p99 ms',
        '× one-GET',
        '× @fastify/session rolling',
        'peak RSS MiB',
      ],
      rows,
    ),
    '',
    `Lowest p99 among the Redis-backed peers: ${fmt(worstPeerP99, 2)} ms.`,
  ].join('\n');
  return { markdown, medians, wardens, peers };
}
