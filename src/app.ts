/**
 * @module app
 * buildApp(config, deps) wires the services and returns a Fastify instance that has
 * not started listening: the CLI listens, tests call `inject()`.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import querystring from 'node:querystring';
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import proxyAddr from '@fastify/proxy-addr';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { adminRoutes } from './admin/admin-routes.js';
import { authApiRoutes } from './api/auth-routes.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { sharedSecret } from './db/settings.js';
import { reasonOf } from './errors.js';
import { AuditLog } from './events/audit.js';
import {
  createLocalLiveBus,
  createRedisLiveBus,
  type LiveBus,
  type LiveRedisClient,
} from './events/live.js';
import { logHistoryIncomplete, logHistoryLost } from './events/log-lines.js';
import { SessionEvents } from './events/session-events.js';
import { csrfFirst, installAuth } from './http/auth.js';
import { Csrf } from './http/csrf.js';
import { takeFlash } from './http/flash.js';
import { healthRoutes } from './http/health-routes.js';
import { checkPlainIntegers } from './http/plain-integers.js';
import { checkQueryNames } from './http/query-names.js';
import { memoryAttemptCounter, PasswordAttempts, redisAttemptCounter } from './http/rate-limit.js';
import { WardenLogController } from './http/request-log.js';
import {
  BODY_LIMIT_BYTES,
  checkBodyParsed,
  clientErrorHandler,
  frameworkErrorHandler,
  installErrorHandling,
  installJsonBodies,
} from './http/respond.js';
import { installSecurityHeaders } from './http/security-headers.js';
import { type FastPathDeps, type TrustFn, withSessionFastPath } from './http/session-fast-path.js';
import { StepUps } from './http/step-up.js';
import { stepUpRoutes } from './http/step-up-routes.js';
import { checkJsonBodyTypes } from './http/strict-json.js';
import { checkText } from './http/text-check.js';
import { createLogger, everyAtMost, LOG_REPEAT_MS } from './logger.js';
import { metricsRoutes } from './metrics/metrics-routes.js';
import { WardenMetrics } from './metrics/warden-metrics.js';
import { authPages } from './pages/auth-pages.js';
import { mySessionsPages } from './pages/my-sessions.js';
import { passwordApi, passwordPages } from './pages/password.js';
import {
  BULK_TIMEOUT_FACTOR,
  failFastWhileOpen,
  type GuardedStore,
  guardStore,
  type StoreCallEvent,
} from './resilience/guarded-store.js';
import { PendingDeletes } from './resilience/pending-deletes.js';
import { CleanupJob } from './sessions/cleanup-job.js';
import {
  type JobLock,
  postgresLock,
  processLock,
  type RedisLockClient,
  redisLock,
} from './sessions/locks.js';
import { SessionPolicies } from './sessions/policy.js';
import { DEFAULT_REDIS_PREFIX } from './sessions/redis-store.js';
import { SessionService } from './sessions/session-service.js';
import type { SessionStore } from './sessions/session-store.js';
import { storeClock } from './sessions/store-clock.js';
import type { TrackedReads } from './sessions/tracked-reads.js';
import { UserRepo } from './users/user-repo.js';
import { UserService } from './users/user-service.js';
import { redisUserVersions, type UserVersionClient } from './users/user-versions.js';
import { page } from './views/layout.js';

export interface AppDeps {
  database: Database;
  /** The raw store; buildApp guards it with a timeout and a circuit breaker. */
  store: SessionStore;
  /** A fixed clock (tests); when unset, the store's clock is followed. */
  clock?: () => number;
  /** This machine's clock, which the store clock corrects. @default Date.now */
  localClock?: () => number;
  /** false silences logging (tests); a pino logger is used as given; default: createLogger(config). */
  logger?: false | Logger;
  /** How long a CSRF token stays valid, in milliseconds. @default 12 hours */
  csrfValidityMs?: number;
  /** Told of every session-store call after the metrics are (tests, extra observers). */
  onStoreCall?: (event: StoreCallEvent) => void;
  /**
   * The Redis client of the session store, when there is one: live updates then go over its
   * pub/sub (a duplicate connection subscribes) and the scheduled cleanup locks in Redis.
   */
  redis?: LiveRedisClient & RedisLockClient & UserVersionClient;
  /** The session store's key prefix; the live channel and the lock live under it. @default 'warden:' */
  redisPrefix?: string;
  /** The store's tracked reads, when it has them: the users' counter is then kept there too. */
  trackedReads?: TrackedReads;
}

/** Everything the routes share, decorated on the instance as `warden`. */
export interface Services {
  config: Config;
  database: Database;
  store: GuardedStore;
  users: UserService;
  sessions: SessionService;
  events: SessionEvents;
  audit: AuditLog;
  csrf: Csrf;
  clock: () => number;
  /** The session policy in force (console overrides over the config), cached per instance. */
  policies: SessionPolicies;
  /** Session changes for live consoles: Redis pub/sub across instances, or in-process. */
  live: LiveBus;
  /** What /metrics reports: counters of this process, fed by the store guard and the session service. */
  metrics: WardenMetrics;
  /** Validation's reads kept in memory under Redis's change reports, when the store has them. */
  trackedReads: TrackedReads | undefined;
  /** Wrong passwords counted per IP and per account (sign-in, step-up, password change). */
  attempts: PasswordAttempts;
  /** When each session last entered its password again, for sensitive console actions. */
  stepUps: StepUps;
}

/** One route as registered: what tests walk to cover every route (test/security). */
export interface RouteEntry {
  method: string;
  url: string;
  schema?: Record<string, unknown>;
  auditAction?: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    warden: Services;
    /** Every route of the app, in the order registered. */
    routeTable: readonly RouteEntry[];
  }
}

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_CSRF_VALIDITY_MS = 12 * 3_600_000;
/** Fastify's default: longer than the usual proxy's idle timeout, so the proxy closes first. */
const KEEP_ALIVE_MS = 72_000;

export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const trust = trustOf(config.trustProxy);
  let nextReqId = 0;
  const genReqId = () => `req-${(nextReqId++).toString(36)}`;
  // Filled in once the services exist; until then every request goes to Fastify.
  let fastPath: FastPathDeps | undefined;
  let closing = false;
  const options: FastifyServerOptions = {
    ...(deps.logger === false
      ? { logger: false }
      : { loggerInstance: deps.logger ?? createLogger(config) }),
    trustProxy: trust ?? false,
    genReqId,
    bodyLimit: BODY_LIMIT_BYTES,
    logController: new WardenLogController(),
    routerOptions: { maxParamLength: 200 },
    // A union's description says what its field takes (see problemOf), read off the error.
    ajv: { customOptions: { verbose: true } },
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    // The server Fastify would make, with the session fast path in front of its handler.
    keepAliveTimeout: KEEP_ALIVE_MS,
    serverFactory: (handler) => {
      const server = http.createServer(withSessionFastPath(handler, () => fastPath));
      // What Fastify sets on a server it makes itself (its defaults, ours for keep-alive).
      server.keepAliveTimeout = KEEP_ALIVE_MS;
      server.requestTimeout = 0;
      server.setTimeout(0);
      return server;
    },
  };
  const app = Fastify(options).withTypeProvider<TypeBoxTypeProvider>();
  const routeTable: RouteEntry[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    checkPlainIntegers(route);
    checkQueryNames(route);
    checkJsonBodyTypes(route);
    checkText(route);
    checkBodyParsed(route);
    csrfFirst(route);
    for (const method of [route.method].flat()) {
      routeTable.push({
        method,
        url: route.url,
        schema: route.schema as RouteEntry['schema'],
        auditAction: route.config?.auditAction,
      });
    }
  });

  const { db } = deps.database;
  const cookieSecret = await sharedSecret(db, 'cookie_secret');
  const csrfKey = await sharedSecret(db, 'csrf_hmac_key');
  const cookies = { secure: config.cookieSecure };

  const metrics = new WardenMetrics();
  const store = guardStore(deps.store, {
    timeoutMs: config.storeTimeoutMs,
    onCall: (event) => {
      metrics.storeCall(event);
      deps.onStoreCall?.(event);
    },
    // An outage's trials only at debug (as the database breaker's, runtime.ts).
    onStateChange: (state, _at, trial) =>
      app.log[trial ? 'debug' : 'warn']({ event: 'breaker', state }, 'session store breaker'),
  });
  const storeTime = deps.clock
    ? undefined
    : storeClock(() => store.time(), deps.localClock, {
        onError: (err) =>
          app.log.warn({ event: 'clock_sync', reason: reasonOf(err) }, 'store clock not read'),
      });
  await storeTime?.sync();
  app.addHook('onClose', async () => storeTime?.stop());
  const clock = deps.clock ?? storeTime!.now;
  const userRepo = new UserRepo(db, deps.database.dialect);
  const events = new SessionEvents(db, {
    onLost: (err, rows) => logHistoryLost(app.log, err, rows),
    onIncomplete: (err, rows) => logHistoryIncomplete(app.log, err, rows),
    reads: deps.database.reads,
  });
  const policies = new SessionPolicies(db, config);
  const redisPrefix = deps.redisPrefix ?? DEFAULT_REDIS_PREFIX;
  // Instances sharing Redis share the users' change counter, so each may cache user rows.
  if (deps.redis) {
    // Read beside every session, on the same Redis: bounded and behind the store's breaker too.
    const versions = redisUserVersions(deps.redis, redisPrefix, deps.trackedReads);
    userRepo.useVersions(failFastWhileOpen(versions, store, config.storeTimeoutMs));
  } else if (deps.database.userVersions) {
    userRepo.useVersions(deps.database.userVersions);
  }
  const onLiveError = (err: unknown, what: string) =>
    app.log.warn({ event: 'live_bus', what, err }, 'live updates disturbed');
  const live = deps.redis
    ? createRedisLiveBus({ client: deps.redis, prefix: redisPrefix, onError: onLiveError })
    : createLocalLiveBus({ onError: onLiveError });
  // Sessions ended by a revocation whose collection came late were counted until it came, and
  // no event says so: open consoles re-read their table and count.
  const stopLateNotice = store.onLateCollection?.((collected) => {
    app.log.info({ event: 'set_aside_late', collected }, 'late collection of ended sessions');
    live.publish({ type: 'resync', at: clock() });
  });
  app.addHook('onClose', async () => stopLateNotice?.());
  // Sessions a failed sign-in may have left behind, deleted once the store answers again.
  const pendingDeletes = new PendingDeletes({
    store,
    clock,
    onDrop: (sessionId) =>
      app.log.error({ event: 'undo_dropped', sessionId }, 'too many sign-ins to undo; one left'),
    onFlush: (result) =>
      app.log.info({ event: 'undo_flushed', ...result }, 'failed sign-ins undone'),
  });
  const sessions = new SessionService({
    store,
    users: userRepo,
    events,
    policy: config,
    policies,
    clock,
    // The store timeout: a create that Redis or PostgreSQL runs after its sign-in has given up
    // writes nothing (one that lands just before is deleted afterwards, see pendingDeletes).
    createWindowMs: config.storeTimeoutMs,
    takeWindowMs: config.storeTimeoutMs * BULK_TIMEOUT_FACTOR,
    undo: (id, until) => pendingDeletes.add(id, until),
    onChange: (change) => {
      metrics.sessionChange(change);
      live.publish({ ...change, at: clock() });
    },
  });
  const services: Services = {
    config,
    database: deps.database,
    store,
    users: new UserService(userRepo, clock),
    sessions,
    events,
    audit: new AuditLog(db, clock),
    csrf: new Csrf(csrfKey, deps.csrfValidityMs ?? DEFAULT_CSRF_VALIDITY_MS, cookies),
    clock,
    policies,
    live,
    metrics,
    trackedReads: deps.trackedReads,
    attempts: new PasswordAttempts(
      deps.redis
        ? // Same Redis as the sessions: while their breaker is open, do not wait on it here.
          failFastWhileOpen(
            redisAttemptCounter(deps.redis, redisPrefix, config.storeTimeoutMs),
            store,
          )
        : memoryAttemptCounter(),
      {
        perAccount: config.signInLimitAccount,
        perIp: config.signInLimitIp,
        windowMs: config.signInLimitWindowMs,
        onError: everyAtMost(LOG_REPEAT_MS, (repeats, err: unknown) =>
          app.log.warn(
            { event: 'rate_limit_counter', err, ...repeats },
            'password attempt counter unavailable',
          ),
        ),
      },
    ),
    stepUps: new StepUps(db, clock, config.stepUpWindowMs),
  };
  app.decorate('warden', services);

  const cleanup = new CleanupJob({
    sessions,
    audit: services.audit,
    lock: cleanupLock(deps, redisPrefix, config.cleanupIntervalMs),
    db,
    clock,
    log: app.log,
    intervalMs: config.cleanupIntervalMs,
    retentionMs: config.retentionMs,
  });
  app.addHook('onReady', async () => {
    await live.start();
    cleanup.start();
  });
  app.addHook('onClose', async () => {
    await cleanup.stop();
    await live.close();
    await pendingDeletes.stop();
    // History rows a revocation answered before writing (SessionEvents.follow).
    await events.settled();
  });

  // Before any route, so that every route's TypeBox schema lands in the document.
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Warden', version: '0.1.0', description: 'Session server and admin console' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'warden_session' },
          csrf: { type: 'apiKey', in: 'header', name: 'x-csrf-token' },
        },
      },
    },
  });
  await app.register(fastifyCookie, { secret: cookieSecret });
  // Node's own parser: a value with a malformed escape (`%ED%A0%80`, a lone surrogate) reads
  // as a browser would show it, with U+FFFD, where the default kept the whole value raw
  // ("caf%C3%A9"). Every key counts: a bulk revoke posts one `ids` per session.
  await app.register(fastifyFormbody, {
    parser: (body) => querystring.parse(body, '&', '=', { maxKeys: 0 }),
  });
  installJsonBodies(app);
  installSecurityHeaders(app);
  await app.register(fastifyStatic, {
    root: path.join(here, 'public'),
    prefix: '/static/',
    decorateReply: false,
  });
  await app.register(fastifyStatic, {
    root: path.join(path.dirname(require.resolve('bootstrap/package.json')), 'dist'),
    prefix: '/static/bootstrap/',
    decorateReply: false,
  });
  await app.register(fastifyStatic, {
    // chart.js exports no package.json; its main entry sits in dist/ beside chart.umd.min.js.
    root: path.dirname(require.resolve('chart.js')),
    prefix: '/static/chartjs/',
    decorateReply: false,
  });

  installAuth(app, {
    sessions: services.sessions,
    audit: services.audit,
    csrf: services.csrf,
    cookies,
    clock,
  });
  app.decorateReply('csrfToken', function csrfToken() {
    return services.csrf.token(this.request, this);
  });
  app.decorateReply('page', function renderPage(opts) {
    const user = this.request.auth?.user;
    const body = page({
      title: opts.title,
      body: opts.body,
      nav: opts.nav,
      viewer: user ? { email: user.email, role: user.role } : null,
      csrfToken: this.csrfToken(),
      flash: opts.flash === undefined ? takeFlash(this.request, this) : opts.flash,
      storeDown: this.request.storeDown || store.breaker.state === 'open',
    });
    return this.type('text/html; charset=utf-8').send(body.value);
  });
  installErrorHandling(app);
  app.addHook('preClose', async () => {
    closing = true;
  });
  fastPath = {
    sessions: services.sessions,
    log: app.log,
    trust,
    genReqId,
    closing: () => closing,
  };

  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(authPages);
  await app.register(mySessionsPages, { prefix: '/me' });
  await app.register(passwordPages, { prefix: '/me' });
  await app.register(authApiRoutes, { prefix: '/api/auth' });
  await app.register(passwordApi, { prefix: '/api/auth' });
  await app.register(stepUpRoutes, { prefix: '/api/auth' });
  await app.register(adminRoutes, { prefix: '/admin' });
  await app.register(metricsRoutes);
  await app.register(healthRoutes);
  return app;
}

/** One scheduled cleanup at a time: across Redis, across one PostgreSQL, or in this process. */
function cleanupLock(deps: AppDeps, redisPrefix: string, intervalMs: number): JobLock {
  // Long enough for any run; a holder that dies blocks the others at most this long.
  const ttlMs = Math.max(intervalMs, 60_000);
  if (deps.redis) return redisLock(deps.redis, `${redisPrefix}lock:cleanup`, ttlMs);
  if (deps.database.dialect === 'postgres') return postgresLock(deps.database.db, 'warden:cleanup');
  return processLock();
}

/** The proxy trust of TRUST_PROXY as a function, shared by Fastify and the fast path. */
function trustOf(setting: Config['trustProxy']): TrustFn | null {
  if (setting === false) return null;
  if (setting === true) return () => true;
  // A hop count trusts that many proxies nearest to Warden.
  if (typeof setting === 'number') return (_addr, hop) => hop < setting;
  return proxyAddr.compile(setting);
}
