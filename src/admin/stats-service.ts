/**
 * @module admin/stats-service
 * The figures of the statistics page, in sections that each keep their own snapshot and say
 * when they were taken: sessions, sign-in activity, the session store, the database and the
 * store's health. Every section is computed from indexes and aggregates (counts, GROUP BY,
 * ZCOUNT), never by reading every session; where only a walk would do (browser and OS), it
 * reads a bounded sample and says so.
 */
import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { ROLES, type Role } from '../db/schema.js';
import type { GuardedStore } from '../resilience/guarded-store.js';
import { expiresAt, type HealthReport } from '../sessions/session-store.js';
import type { UserRepo } from '../users/user-repo.js';
import { SignInCounts } from './stats-activity.js';
import { CachedFigure, type Snapshot } from './stats-snapshot.js';
import { parseUserAgent } from './user-agent.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** How many of the newest sessions the browser and OS figures are drawn from. */
export const CLIENT_SAMPLE = 5_000;
/** How many users the "most sessions" table shows. */
export const TOP_USERS = 10;
/** Bucket bounds of the remaining-lifetime histogram, in milliseconds from now. */
export const LIFETIME_EDGES_MS = [5 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, DAY_MS] as const;
const LIFETIME_LABELS = ['under 5 min', '5 min to 1 h', '1 h to 6 h', '6 h to 24 h', 'over 24 h'];
const DANGLING_LABELS: Record<string, string> = {
  by_created: 'creation index entries without a session',
  by_expiry: 'expiry index entries without a session',
  user_indexes: 'per-user index entries without a session (or filed under another user)',
  ended_sessions: 'ended sessions whose history copy was never collected (their instance stopped)',
  orphan_sessions: 'sessions whose user no longer exists',
};

/** How long each section's figures are served before they are taken again, in milliseconds. */
export const MAX_AGE_MS = {
  sessions: 3_000,
  activity: 10_000,
  store: 3_000,
  database: 10_000,
  health: 15_000,
} as const;

export interface CountRow {
  name: string;
  count: number;
  /** Share of the counted whole, 0 to 1. */
  share: number;
}

export interface SessionFigures {
  total: number;
  active: number;
  expired: number;
  byRole: { role: Role; total: number; active: number }[];
  topUsers: { userId: number; email: string; role: string; sessions: number }[];
  /** null when every session was ranked; else how many of the newest the ranking came from. */
  topUsersSampledFrom: number | null;
  /** How many sessions (newest first) the client figures read, and how many were active. */
  clientSample: { read: number; active: number; complete: boolean };
  browsers: CountRow[];
  os: CountRow[];
}

export interface ActivityFigures {
  /** The last 24 hours, oldest first, one entry per UTC hour (the last one running). */
  signInsPerHour: { start: number; count: number }[];
  /** The last 30 days, oldest first, one entry per UTC day (the last one running). */
  signInsPerDay: { start: number; count: number }[];
}

export interface RedisFigures {
  version: string | null;
  uptimeSeconds: number | null;
  usedMemoryBytes: number | null;
  peakMemoryBytes: number | null;
  fragmentationRatio: number | null;
  connectedClients: number | null;
  opsPerSecond: number | null;
  /** keyspace_hits / (hits + misses), null before any lookup. */
  hitRatio: number | null;
  expiredKeys: number | null;
  evictedKeys: number | null;
}

export interface StoreFigures {
  kind: 'sql' | 'redis';
  /** PING (or `select 1`) as Warden measures it, in milliseconds. */
  roundTripMs: number;
  redis: RedisFigures | null;
}

export interface DatabaseFigures {
  dialect: 'sqlite' | 'postgres';
  roundTripMs: number;
  sizeBytes: number;
  tables: { name: string; rows: number }[];
}

export interface HealthFigures {
  remaining: { label: string; count: number }[];
  expired: number;
  oldestExpiredAt: number | null;
  dangling: { key: string; label: string; count: number }[];
  danglingTotal: number;
  checked: number;
  complete: boolean;
}

export interface StatsReport {
  /** The app's clock when the report was put together. */
  now: number;
  breaker: { state: 'closed' | 'open' | 'half_open'; since: number };
  sessions: Snapshot<SessionFigures>;
  activity: Snapshot<ActivityFigures>;
  store: Snapshot<StoreFigures>;
  database: Snapshot<DatabaseFigures>;
  health: Snapshot<HealthFigures>;
}

export interface StatsDeps {
  store: GuardedStore;
  database: Database;
  users: UserRepo;
  clock: () => number;
  onError?: (section: string, err: unknown) => void;
}

/**
 * The report's sections, each a snapshot of its own. Their scans (counts by role, top users,
 * table rows, sign-ins per period) go through `database.reads`: on SQLite in the server, a
 * reader thread, so a refresh at a million sessions no longer holds every request (it held
 * them 0.8–2.2 s the first time, about 120 ms after). Elsewhere (one-shot commands, tests on
 * an in-memory database) they run in this thread, bounded by the duty factor.
 */
export class StatsService {
  readonly #deps: StatsDeps;
  readonly #sessions: CachedFigure<SessionFigures>;
  readonly #activity: CachedFigure<ActivityFigures>;
  readonly #store: CachedFigure<StoreFigures>;
  readonly #database: CachedFigure<DatabaseFigures>;
  readonly #health: CachedFigure<HealthFigures>;
  readonly #hours: SignInCounts;
  readonly #days: SignInCounts;

  constructor(deps: StatsDeps) {
    this.#deps = deps;
    this.#hours = new SignInCounts(deps.database.reads, HOUR_MS, 24);
    this.#days = new SignInCounts(deps.database.reads, DAY_MS, 30);
    const figure = <T>(name: keyof typeof MAX_AGE_MS, compute: () => Promise<T>) =>
      new CachedFigure(compute, {
        maxAgeMs: MAX_AGE_MS[name],
        clock: deps.clock,
        onError: (err) => deps.onError?.(name, err),
      });
    this.#sessions = figure('sessions', () => this.#takeSessions());
    this.#activity = figure('activity', () => this.#takeActivity());
    this.#store = figure('store', () => this.#takeStore());
    this.#database = figure('database', () => this.#takeDatabase());
    this.#health = figure('health', () => this.#takeHealth());
  }

  async report(): Promise<StatsReport> {
    // The round trips are measured first, before the heavier reads queue up beside them.
    const storeFigures = this.#store.get();
    const databaseFigures = this.#database.get();
    // Health before sessions: reading the sample prunes the dangling entries it meets (as
    // every reader of the Redis store does), and the health figures should count them first.
    const health = await this.#health.get();
    const [sessions, activity, store, database] = await Promise.all([
      this.#sessions.get(),
      this.#activity.get(),
      storeFigures,
      databaseFigures,
    ]);
    const { state, since } = this.#deps.store.breaker;
    return {
      now: this.#deps.clock(),
      breaker: { state, since },
      sessions,
      activity,
      store,
      database,
      health,
    };
  }

  /** After a repair made here: every figure it changes is taken again on the next request. */
  repaired(): void {
    this.#sessions.invalidate('now');
    this.#health.invalidate('now');
    this.#database.invalidate('now');
  }

  /**
   * After a revocation (on any instance): the session figures and the health card are taken
   * again on the next request, which waits for them, so a reload right after it shows it.
   * Revocations are admin actions, and few; sign-ins, which are many, let the figures age.
   */
  revoked(): void {
    this.#sessions.invalidate('now');
    this.#health.invalidate('now');
  }

  /**
   * After a cleanup (the console's button or the scheduled job, on any instance): the health
   * card, where the button sits, at once; the others within their usual interval, so a long
   * cleanup publishing many changes cannot force a computation per request.
   */
  cleanedUp(): void {
    this.#health.invalidate('now');
    this.#sessions.invalidate('soon');
    this.#database.invalidate('soon');
  }

  async #takeSessions(): Promise<SessionFigures> {
    const { store, users, clock } = this.#deps;
    const now = clock();
    const [counts, byRole, top, sample] = await Promise.all([
      store.counts(now),
      store.countsByRole(now),
      store.topUsers(TOP_USERS),
      store.sample(CLIENT_SAMPLE),
    ]);
    const owners = await users.findMany(top.users.map((u) => u.userId));

    // LIMITATION: parsing user agents is the one figure that needs each session, so it reads
    // the newest CLIENT_SAMPLE sessions only (one bounded read through the creation index) and
    // the page labels it a sample once the store holds more; parsed strings are cached.
    const active = sample.filter((s) => expiresAt(s) > now);
    const browsers = new Map<string, number>();
    const systems = new Map<string, number>();
    for (const s of active) {
      const client = parseUserAgent(s.userAgent);
      bump(browsers, withoutVersion(client.browser));
      bump(systems, withoutVersion(client.os));
    }
    const total = counts.active + counts.expired;

    return {
      total,
      active: counts.active,
      expired: counts.expired,
      byRole: ROLES.map((role) => ({ role, ...byRole[role] })),
      topUsers: top.users.map((u) => {
        const owner = owners.get(u.userId);
        return {
          userId: u.userId,
          email: owner?.email ?? `(deleted user ${u.userId})`,
          role: owner?.role ?? '',
          sessions: u.sessions,
        };
      }),
      topUsersSampledFrom: top.sampledFrom,
      clientSample: {
        read: sample.length,
        active: active.length,
        complete: sample.length >= total,
      },
      browsers: ranked(browsers, active.length),
      os: ranked(systems, active.length),
    };
  }

  async #takeActivity(): Promise<ActivityFigures> {
    const now = this.#deps.clock();
    const [hours, days] = await Promise.all([this.#hours.counts(now), this.#days.counts(now)]);
    return { signInsPerHour: hours, signInsPerDay: days };
  }

  async #takeStore(): Promise<StoreFigures> {
    const { store } = this.#deps;
    const [roundTripMs, info] = await Promise.all([store.ping(), store.info()]);
    return {
      kind: store.kind,
      roundTripMs,
      redis: store.kind === 'redis' ? redisFigures(info) : null,
    };
  }

  async #takeDatabase(): Promise<DatabaseFigures> {
    const database = this.#deps.database;
    const [roundTripMs, sizeBytes, tables] = await Promise.all([
      database.ping(),
      databaseSize(database),
      tableRows(database),
    ]);
    return { dialect: database.dialect, roundTripMs, sizeBytes, tables };
  }

  async #takeHealth(): Promise<HealthFigures> {
    const report: HealthReport = await this.#deps.store.healthReport(
      this.#deps.clock(),
      LIFETIME_EDGES_MS,
    );
    const dangling = Object.entries(report.dangling).map(([key, count]) => ({
      key,
      label: DANGLING_LABELS[key] ?? key,
      count,
    }));
    return {
      remaining: report.remaining.map((count, i) => ({
        label: LIFETIME_LABELS[i] ?? `bucket ${i + 1}`,
        count,
      })),
      expired: report.expired,
      oldestExpiredAt: report.oldestExpiredAt,
      dangling,
      danglingTotal: dangling.reduce((sum, d) => sum + d.count, 0),
      checked: report.checked,
      complete: report.complete,
    };
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** "Chrome 131" → "Chrome": the breakdown is by product, not by release. */
function withoutVersion(label: string): string {
  return label.replace(/ [\d.]+$/, '');
}

function ranked(map: Map<string, number>, whole: number): CountRow[] {
  return [...map]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([name, count]) => ({ name, count, share: whole > 0 ? count / whole : 0 }));
}

function num(raw: string | undefined): number | null {
  if (raw === undefined || raw.trim() === '') return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

/** The INFO fields the page shows; missing ones (another server, a restricted INFO) are null. */
export function redisFigures(info: Record<string, string>): RedisFigures {
  const hits = num(info.keyspace_hits);
  const misses = num(info.keyspace_misses);
  const lookups = (hits ?? 0) + (misses ?? 0);
  return {
    version: info.redis_version ?? info.valkey_version ?? null,
    uptimeSeconds: num(info.uptime_in_seconds),
    usedMemoryBytes: num(info.used_memory),
    peakMemoryBytes: num(info.used_memory_peak),
    fragmentationRatio: num(info.mem_fragmentation_ratio),
    connectedClients: num(info.connected_clients),
    opsPerSecond: num(info.instantaneous_ops_per_sec),
    hitRatio: hits !== null && lookups > 0 ? hits / lookups : null,
    expiredKeys: num(info.expired_keys),
    evictedKeys: num(info.evicted_keys),
  };
}

/** SQLite: page_count × page_size of the main file; PostgreSQL: pg_database_size. */
async function databaseSize(database: Database): Promise<number> {
  if (database.dialect === 'postgres') {
    const { rows } = await sql<{
      size: number | string;
    }>`select pg_database_size(current_database()) as size`.execute(database.reads);
    return Number(rows[0]?.size ?? 0);
  }
  const { rows } = await sql<{
    size: number;
  }>`select page_count * page_size as size from pragma_page_count(), pragma_page_size()`.execute(
    database.reads,
  );
  return Number(rows[0]?.size ?? 0);
}

/** Every table of Warden's schema with its exact row count (Kysely's own tables left out). */
async function tableRows(database: Database): Promise<{ name: string; rows: number }[]> {
  const db = database.reads;
  const { rows: names } =
    database.dialect === 'postgres'
      ? await sql<{ name: string }>`
          select tablename as name from pg_tables where schemaname = current_schema()
          order by tablename`.execute(db)
      : await sql<{ name: string }>`
          select name from sqlite_master where type = 'table' and name not like 'sqlite_%'
          order by name`.execute(db);
  const tables = names.map((r) => r.name).filter((n) => !n.startsWith('kysely_'));

  const counts = await Promise.all(
    tables.map(async (name) => {
      const { rows } = await sql<{
        n: number | string;
      }>`select count(*) as n from ${sql.table(name)}`.execute(db);
      return { name, rows: Number(rows[0]?.n ?? 0) };
    }),
  );
  return counts;
}
