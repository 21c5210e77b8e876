/**
 * @module runtime
 * Opens what a Warden process works on, in order: the database (migrated to the latest
 * schema), the Redis client when sessions live there, the raw session store and the
 * services the CLI calls. `close()` releases them in reverse.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { createClient } from 'redis';
import type { Config } from './config.js';
import { type Database, openDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrations.js';
import { reasonOf } from './errors.js';
import { AuditLog } from './events/audit.js';
import { createRedisLiveBus, type LiveBus } from './events/live.js';
import { logHistoryIncomplete, logHistoryLost } from './events/log-lines.js';
import { SessionEvents } from './events/session-events.js';
import { waitAtMost } from './resilience/wait-at-most.js';
import { DEFAULT_REDIS_PREFIX, RedisSessionStore } from './sessions/redis-store.js';
import { SessionService } from './sessions/session-service.js';
import type { SessionStore } from './sessions/session-store.js';
import { SqlSessionStore } from './sessions/sql-store.js';
import { storeClock } from './sessions/store-clock.js';
import { TrackedReads } from './sessions/tracked-reads.js';
import { UserRepo } from './users/user-repo.js';
import { UserService } from './users/user-service.js';
import { redisUserVersions } from './users/user-versions.js';

/** Gives up on one TCP connect to Redis after this long, in milliseconds. */
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
/** First pause before reconnecting to Redis, in milliseconds; doubles per attempt. */
export const REDIS_RECONNECT_BASE_MS = 100;
/**
 * Longest pause between reconnect attempts, in milliseconds: short, so that Warden is back within
 * about a second of Redis (an attempt at a closed port costs next to nothing).
 */
export const REDIS_RECONNECT_MAX_MS = 1_000;
/** How long opening waits for Redis to become ready, in milliseconds. */
export const REDIS_READY_WAIT_MS = 5_000;
/** How long close() waits for Redis to answer queued commands before cutting the socket. */
const REDIS_CLOSE_WAIT_MS = 2_000;

export type RedisClient = ReturnType<typeof createRedisClient>;

export interface RuntimeOptions {
  /**
   * What to do when Redis is not ready within REDIS_READY_WAIT_MS: `fail` (one-shot commands,
   * which cannot do their job without it) or `continue` (the server, which answers 503 for
   * store calls until the client, reconnecting by itself, gets through). @default 'fail'
   */
  redisUnavailable?: 'fail' | 'continue';
  /**
   * Bound every PostgreSQL query by DATABASE_TIMEOUT behind a breaker: the server, which must
   * answer fast while the database stalls. One-shot commands leave it off, as their statements
   * (a migration, a seed, a full audit walk) may rightly run long. @default false
   */
  boundDatabase?: boolean;
  /**
   * On SQLite, checkpoint the write-ahead log from a thread of its own (see openDatabase): the
   * server, whose requests would otherwise pay for it. @default false
   */
  checkpointInBackground?: boolean;
  /**
   * On SQLite, run the statistics' scans on a read-only connection in a thread of its own
   * (see db/sqlite-reader): the server, whose requests would otherwise wait for them.
   * @default false
   */
  readerThread?: boolean;
  /**
   * With Redis sessions, keep validation's reads in memory under Redis's change reports
   * (TrackedReads, SESSION_CACHE_MAX of them): the server. One-shot commands read once.
   * @default false
   */
  trackReads?: boolean;
  /** A fixed clock (tests). @default the store's clock, measured once at open and every 30 s */
  clock?: () => number;
}

export interface Runtime {
  readonly config: Config;
  readonly database: Database;
  /** The connected client when sessions live in Redis, else undefined. */
  readonly redis: RedisClient | undefined;
  /** The Redis store's key prefix, when one is configured (else the store's default). */
  readonly redisPrefix: string | undefined;
  /** Validation's reads kept in memory under Redis's change reports, when asked for. */
  readonly trackedReads: TrackedReads | undefined;
  /** The raw store, without timeout or breaker: buildApp adds those for the server. */
  readonly store: SessionStore;
  readonly userRepo: UserRepo;
  readonly users: UserService;
  readonly events: SessionEvents;
  readonly sessions: SessionService;
  readonly audit: AuditLog;
  readonly clock: () => number;
  /** Closes the store, the Redis client and the database; safe to call twice. */
  close(): Promise<void>;
}

/** Thrown when a one-shot command cannot reach Redis. */
export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/**
 * Opens the database, migrates it, connects Redis when configured and builds the services.
 * @example const runtime = await openRuntime(config, logger); ... await runtime.close();
 */
export async function openRuntime(
  config: Config,
  logger: Logger,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const database = openDatabase(config.database, {
    timeoutMs: options.boundDatabase ? config.databaseTimeoutMs : undefined,
    checkpointInBackground: options.checkpointInBackground,
    readerThread: options.readerThread,
    // An outage's trials, every 2 s while it lasts, only at debug: its opening and its end
    // are the lines an operator reads.
    onBreakerChange: (state, _at, trial) =>
      logger[trial ? 'debug' : 'warn'](
        { event: 'database_breaker', state },
        'database breaker changed',
      ),
  });
  const redisPrefix = config.redisPrefix;
  let redis: RedisClient | undefined;
  let tracking: ReturnType<typeof createTrackingClient> | undefined;
  let trackedReads: TrackedReads | undefined;

  try {
    const migrated = await migrateToLatest(
      database.db as unknown as Kysely<unknown>,
      database.dialect,
    );
    // An upgrade says what it changed in the schema, where an operator reads the start.
    for (const r of migrated.results ?? []) {
      if (r.status !== 'Success') continue;
      logger.info({ event: 'migration_applied', migration: r.migrationName }, 'migration applied');
    }
    const userRepo = new UserRepo(database.db, database.dialect);

    let store: SessionStore;
    if (config.sessionStore === 'redis' && config.redisUrl !== undefined) {
      redis = createRedisClient(config.redisUrl, logger);
      await connectRedis(redis, config.redisUrl, options.redisUnavailable ?? 'fail', logger);
      watchForDataLoss(redis, config.redisUrl, redisPrefix ?? DEFAULT_REDIS_PREFIX, logger);
      if (options.trackReads && config.sessionCacheMax > 0) {
        tracking = createTrackingClient(config.redisUrl);
        trackedReads = new TrackedReads(tracking, { maxEntries: config.sessionCacheMax });
        // Not awaited: until it is ready every read goes to Redis on the main connection's
        // terms, and it reconnects by itself (its outages show on the main client's log).
        tracking.connect().catch(() => {});
      }
      // The CLI's user changes (create-superuser) must reach the servers' cached rows too.
      userRepo.useVersions(
        redisUserVersions(redis, redisPrefix ?? DEFAULT_REDIS_PREFIX, trackedReads),
      );
      store = new RedisSessionStore({
        client: redis,
        tracked: trackedReads,
        prefix: redisPrefix,
        resolveUserIds: (filter, options) => userRepo.idsMatching(filter, options),
        retentionMs: config.retentionMs,
        onPartialFailure: (err) =>
          logger.warn({ event: 'store_partial_failure', err }, 'bulk delete stopped part-way'),
      });
    } else {
      // Sessions read for validation stay in memory until this store writes them or another
      // process commits to the file (PRAGMA data_version moves).
      const memory =
        options.trackReads && config.sessionCacheMax > 0 && database.dataVersion
          ? { dataVersion: database.dataVersion, maxEntries: config.sessionCacheMax }
          : undefined;
      store = new SqlSessionStore(database.db, database.dialect, {
        memory,
        log: database.walLog,
        reads: database.reads,
      });
    }

    // Deadlines follow the store's clock, as the server's do, so a cleanup run from a
    // machine whose clock is off ends the same sessions the server considers expired.
    const storeTime = options.clock
      ? undefined
      : storeClock(() => store.time(), Date.now, {
          onError: (err) =>
            logger.warn(
              { event: 'clock_sync', reason: reasonOf(err) },
              'store clock not read; using local time',
            ),
        });
    await storeTime?.sync();
    const clock = options.clock ?? storeTime!.now;

    const events = new SessionEvents(database.db, {
      onLost: (err, rows) => logHistoryLost(logger, err, rows),
      onIncomplete: (err, rows) => logHistoryIncomplete(logger, err, rows),
      reads: database.reads,
    });
    // With Redis, what a command changes (`warden sessions revoke`, `cleanup`) reaches every
    // open console as the servers' own changes do: published on their live channel. This
    // bus only publishes; its subscriber connection is never opened.
    const live: LiveBus | undefined = redis
      ? createRedisLiveBus({
          client: redis,
          prefix: redisPrefix ?? DEFAULT_REDIS_PREFIX,
          onError: (err, what) =>
            logger.warn({ event: 'live_bus', what, err }, 'live update not published'),
        })
      : undefined;
    const sessions = new SessionService({
      store,
      users: userRepo,
      events,
      policy: config,
      clock,
      ...(live ? { onChange: (change) => live.publish({ ...change, at: clock() }) } : {}),
    });
    return {
      config,
      database,
      redis,
      redisPrefix,
      trackedReads,
      store,
      userRepo,
      users: new UserService(userRepo, clock),
      events,
      sessions,
      audit: new AuditLog(database.db, clock, database.dialect),
      clock,
      close: once(async () => {
        await events.settled();
        storeTime?.stop();
        await live?.close();
        await store.close();
        trackedReads?.close();
        if (tracking?.isOpen) tracking.destroy();
        if (redis) await closeRedis(redis);
        await database.close();
      }),
    };
  } catch (err) {
    trackedReads?.close();
    if (tracking?.isOpen) tracking.destroy();
    if (redis?.isOpen) redis.destroy();
    await database.close();
    throw err;
  }
}

/**
 * A node-redis client that fails commands at once while disconnected (no offline queue, so
 * an outage cannot pile up writes to replay later) and reconnects with a capped back-off.
 */
export function createRedisClient(url: string, logger: Logger) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: REDIS_CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay },
  });
  watchRedis(client, url, logger);
  return client;
}

/**
 * The connection tracked reads go over: RESP3 with CLIENT TRACKING turned on in its handshake
 * (node-redis sends it on every reconnect), invalidations emitted as 'invalidate' events.
 */
export function createTrackingClient(url: string) {
  return createClient({
    url,
    RESP: 3,
    emitInvalidate: true,
    // RESP3 would also turn on node-redis's handling of Redis Enterprise maintenance pushes:
    // an extra handshake command Redis refuses, and nothing this connection needs.
    maintNotifications: 'disabled',
    disableOfflineQueue: true,
    socket: { connectTimeout: REDIS_CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay },
  });
}

const DATA_MARK_TTL_S = 7 * 24 * 3600;
const DATA_MARK_CHECK_MS = 3_600_000;

/** Milliseconds before reconnect attempt `retries` (0-based): doubling, capped, jittered. */
export function reconnectDelay(retries: number): number {
  const backoff = Math.min(REDIS_RECONNECT_BASE_MS * 2 ** retries, REDIS_RECONNECT_MAX_MS);
  // Jitter keeps a fleet of instances from reconnecting in lockstep after a Redis restart.
  return Math.round(backoff * (0.8 + Math.random() * 0.2));
}

/** The URL as it may appear in a log line: without its password. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}

/**
 * Logs Redis going down once, with the first error, and coming back once, with how many
 * attempts failed meanwhile: node-redis emits 'error' on every failed retry, which would
 * otherwise fill the log during an outage.
 */
function watchRedis(client: ReturnType<typeof createClient>, url: string, logger: Logger) {
  const where = redactRedisUrl(url);
  let down = false;
  let failures = 0;

  client.on('error', (err: unknown) => {
    failures += 1;
    if (down) return;
    down = true;
    logger.error({ event: 'redis_down', url: where, err }, 'redis unreachable');
  });
  client.on('ready', () => {
    if (down) {
      logger.info({ event: 'redis_up', url: where, failedAttempts: failures }, 'redis is back');
    }
    down = false;
    failures = 0;
  });
}

/**
 * Says when Redis has lost Warden's keys. A Redis restarted with no persistence (no RDB
 * snapshot or AOF), or flushed, has lost every session, which to Warden looks like everyone
 * signing out at once: everyone must sign in again, and their sign-ins stay without an end in
 * the history. A mark key is set on connecting; each reconnect, and a check every hour, finds
 * it still there or says it is gone. The mark expires like every key of Warden's, a week after
 * its last check. (An `allkeys-*` eviction policy could evict it too: that warning would be a
 * false one, and such a policy evicts sessions anyway.)
 */
function watchForDataLoss(client: RedisClient, url: string, prefix: string, logger: Logger): void {
  const key = `${prefix}data-set`;
  // Whether this process has seen the mark: the first check only sets it.
  let marked = false;
  const check = async () => {
    try {
      const created = await client.set(key, new Date().toISOString(), {
        condition: 'NX',
        expiration: { type: 'EX', value: DATA_MARK_TTL_S },
      });
      if (created !== 'OK') await client.expire(key, DATA_MARK_TTL_S);
      else if (marked) {
        logger.error(
          { event: 'redis_data_lost', url: redactRedisUrl(url), key },
          'redis lost its data: every session is gone and everyone must sign in again ' +
            '(run Redis with AOF or RDB persistence to keep sessions across a restart)',
        );
      }
      marked = true;
    } catch {
      // Down, or refusing writes: the next reconnect or the next hour checks.
    }
  };
  client.on('ready', () => void check());
  if (client.isReady) void check();
  const hourly = setInterval(() => void check(), DATA_MARK_CHECK_MS);
  hourly.unref();
  client.on('end', () => clearInterval(hourly));
}

async function connectRedis(
  client: RedisClient,
  url: string,
  onUnavailable: 'fail' | 'continue',
  logger: Logger,
): Promise<void> {
  // With a reconnect strategy, connect() keeps retrying until Redis answers; errors on the
  // way reach the 'error' listener, so this promise only settles on ready or close.
  const connecting = client.connect().then(
    () => true,
    () => false,
  );
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), REDIS_READY_WAIT_MS);
  });
  const ready = await Promise.race([connecting, waited]);
  clearTimeout(timer);
  if (ready && client.isReady) return;

  if (onUnavailable === 'continue') {
    logger.warn(
      { event: 'redis_not_ready', url: redactRedisUrl(url), waitedMs: REDIS_READY_WAIT_MS },
      'starting without redis; session calls answer 503 until it connects',
    );
    return;
  }
  if (client.isOpen) client.destroy();
  throw new RedisUnavailableError(
    `redis at ${redactRedisUrl(url)} did not answer within ${REDIS_READY_WAIT_MS} ms`,
  );
}

async function closeRedis(client: RedisClient): Promise<void> {
  if (!client.isOpen) return;
  await waitAtMost(client.close(), REDIS_CLOSE_WAIT_MS);
  if (client.isOpen) client.destroy();
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= fn();
    return running;
  };
}
