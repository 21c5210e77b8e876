/**
 * @module bench/run
 * `npm run bench`: starts its own Redis, PostgreSQL database(s), Warden and the peer stacks on
 * loopback, runs the sections asked for and prints Markdown tables (also written to
 * bench/results/latest.md). Not part of `npm test`.
 *
 *   npm run bench                               every section
 *   npm run bench -- --only validation,pages    some sections
 *   npm run bench -- --rounds 3 --seconds 10    load-run lengths
 *   npm run bench -- --sessions 1000000 --users 100000   scale of the console/memory sections
 *   npm run bench -- --cap 20                   seconds at most per console query's samples
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createDatabase, killAll, ROOT, run, startRedis } from './lib/procs.js';
import { removeSqliteFiles, sqliteFile } from './lib/warden.js';
import { connectRedisBytesPerSession } from './memory.js';
import { runPages } from './pages.js';
import { runScale } from './scale.js';
import { runValidation } from './validation.js';

const SECTIONS = ['validation', 'console', 'operations', 'memory', 'pages'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    sessions: { type: 'string', default: '1000000' },
    users: { type: 'string', default: '100000' },
    samples: { type: 'string', default: '200' },
    cap: { type: 'string', default: '20' },
    stacks: { type: 'string', default: 'redis+postgres,sqlite' },
  },
});
const only = new Set<Section>(values.only ? (values.only.split(',') as Section[]) : [...SECTIONS]);
for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s}`);

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const out: string[] = [];
const emit = (text: string) => {
  out.push(text);
  process.stdout.write(`${text}\n`);
};

async function machine(): Promise<string> {
  const redis = (await run('redis-server', ['--version'])).stdout.match(/v=([\d.]+)/)?.[1];
  const pg = (await run('psql', ['--version'])).stdout.trim().split(' ').pop();
  const wrk = (await run('wrk', ['--version']).catch((e) => e)).stdout?.split('\n')[0] ?? '';
  const load = os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
  return [
    `- ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    `- Node ${process.version}, Redis ${redis}, PostgreSQL ${pg}, ${wrk.trim()}`,
    `- load average at start: ${load}`,
    `- command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\``,
    `- date: ${new Date().toISOString()}`,
  ].join('\n');
}

async function main(): Promise<void> {
  emit('# Warden benchmark\n');
  emit(await machine());
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const warmupSeconds = Number(values.warmup);
  const sessions = Number(values.sessions);
  const users = Number(values.users);
  const samples = Number(values.samples);
  const cleanups: Array<() => Promise<void>> = [];

  try {
    if (only.has('validation')) {
      const redis = await startRedis();
      const pg = await createDatabase('warden_bench_validation');
      cleanups.push(pg.drop, redis.stop);
      log(`validation: redis ${redis.url}`);
      const report = await runValidation({
        redisUrl: redis.url,
        rounds,
        seconds,
        warmupSeconds,
        log,
        wardens: [
          {
            name: 'Redis sessions, SQLite users',
            env: { REDIS_URL: redis.url, DATABASE_URL: sqliteFile('v-redis') },
          },
          {
            name: 'Redis sessions, PostgreSQL users',
            env: { REDIS_URL: redis.url, DATABASE_URL: pg.url, REDIS_PREFIX: 'warden-pg:' },
          },
          { name: 'SQL store on SQLite', env: { DATABASE_URL: sqliteFile('v-sqlite') } },
        ],
      });
      for (const p of [...report.wardens, ...report.peers]) await p.stop();
      emit(
        `\n## 1. Session validation (${rounds} interleaved rounds of ${seconds} s, 50 connections)\n`,
      );
      emit(report.markdown);
    }
    if (only.has('console') || only.has('operations') || only.has('memory')) {
      const scale = await runScale({
        sessions,
        users,
        samples,
        capSeconds: Number(values.cap),
        stacks: values.stacks.split(',') as Array<'redis+postgres' | 'sqlite'>,
        operations: only.has('operations'),
        console: only.has('console'),
        log,
      });
      if (only.has('console')) {
        emit(
          `\n## 2. Console at scale (${samples} requests per query, at most ${values.cap} s each)\n`,
        );
        emit(scale.console);
      }
      if (only.has('operations')) {
        emit('\n## 3. Operations\n');
        emit(scale.operations);
      }
      if (only.has('memory')) {
        emit('\n## 4. Memory\n');
        emit(scale.memory);
        const peer = await connectRedisBytesPerSession(sessions, log);
        emit(
          `- connect-redis storing the same fields, no index: **${Math.round(peer)} bytes per session**` +
            (scale.redisBytesPerSession
              ? ` (Warden ${(scale.redisBytesPerSession / peer).toFixed(2)}× that).`
              : '.'),
        );
      }
    }
    if (only.has('pages')) {
      emit('\n## 5. Pages\n');
      emit(await runPages(log));
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch((e) => log(`cleanup: ${e}`));
    killAll();
    removeSqliteFiles();
    const dir = path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'latest.md'), `${out.join('\n')}\n`);
  }
}

await main();
