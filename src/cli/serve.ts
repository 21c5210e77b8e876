/**
 * @module cli/serve
 * `warden serve`: opens the runtime, builds the app, listens, and on SIGTERM or SIGINT
 * stops taking requests, gives those in flight SHUTDOWN_GRACE to finish, closes the
 * store and the database, and exits 0.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from '../app.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { type CliContext, CliError, EXIT_FAILURE, EXIT_OK, parseFlags } from './command.js';
import { serverLogger } from './logger.js';

const COMMAND = 'warden serve';

export const HELP = `Usage: ${COMMAND}

Runs the HTTP server on HOST:PORT (default 127.0.0.1:3000): the sign-in pages, the
admin console under /admin and the JSON API under /api. Migrates the database first.

With REDIS_URL set, sessions live in Redis; when Redis is not reachable at start the
server starts anyway and answers 503 for sessions until Redis is back.

SIGTERM or SIGINT stops it: requests in flight get SHUTDOWN_GRACE (default 10s), then
the store and the database are closed and it exits 0. A second signal exits at once.
`;

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
// After the grace, connections are cut; app.close() then gets this long for its hooks.
const AFTER_GRACE_MS = 2_000;

/** Runs `warden serve` until a signal stops it. */
export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(COMMAND, argv, { help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    ctx.out(HELP);
    return EXIT_OK;
  }

  const config = ctx.config();
  const logger = serverLogger(config);
  const runtime = await openRuntime(config, logger, {
    redisUnavailable: 'continue',
    boundDatabase: true,
    checkpointInBackground: true,
    readerThread: true,
    trackReads: true,
  });
  let app: FastifyInstance | undefined;
  try {
    await warnWithoutSuperuser(runtime, logger, ctx);
    app = await buildApp(config, {
      database: runtime.database,
      store: runtime.store,
      logger,
      redis: runtime.redis,
      redisPrefix: runtime.redisPrefix,
      trackedReads: runtime.trackedReads,
    });
    await app.listen({ host: config.host, port: config.port }).catch((err: unknown) => {
      throw listenProblem(err, config.host, config.port) ?? err;
    });
  } catch (err) {
    await app?.close();
    await runtime.close();
    throw err;
  }

  const signal = await nextSignal(logger);
  logger.info({ event: 'shutdown', signal, graceMs: config.shutdownGraceMs }, 'shutting down');
  await closeWithin(app, config.shutdownGraceMs, logger);
  await runtime.close();
  logger.info({ event: 'stopped' }, 'stopped');

  return EXIT_OK;
}

/** Says how to create the first superuser while nobody can open the console. */
async function warnWithoutSuperuser(runtime: Runtime, logger: Logger, ctx: CliContext) {
  const [users, superusers] = await Promise.all([
    runtime.userRepo.countAll(),
    runtime.userRepo.countSuperusers(),
  ]);
  if (superusers > 0) return;

  logger.warn(
    { event: 'no_superuser', users },
    users === 0 ? 'no users yet' : 'no approved superuser',
  );
  ctx.err(
    'warden: nobody can open the console yet. Create the first superuser, with this\n' +
      "server's DATABASE_URL (and REDIS_URL) set, with:\n" +
      '  npx warden create-superuser --email you@example.com\n',
  );
}

/** Resolves on the first SIGTERM or SIGINT; a second one ends the process at once. */
function nextSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) {
        logger.warn({ event: 'shutdown_forced', signal }, 'second signal; exiting now');
        process.exit(EXIT_FAILURE);
      }
      received = true;
      resolve(signal);
    };
    for (const s of SIGNALS) process.on(s, onSignal);
  });
}

/**
 * Closes the app, letting requests in flight finish for up to `graceMs`; past that, cuts the
 * remaining connections so a hung client cannot hold the shutdown.
 */
async function closeWithin(app: FastifyInstance, graceMs: number, logger: Logger) {
  const closing = app.close().then(() => true);
  // A keep-alive connection whose last request ends after close() began would stay open, idle,
  // until the grace is over: close each one as soon as it is idle.
  const idle = setInterval(() => app.server.closeIdleConnections(), 50);
  const closed = await raceTimer(closing, graceMs);
  clearInterval(idle);
  if (closed) return;

  logger.warn({ event: 'shutdown_grace_over', graceMs }, 'grace over; closing connections');
  app.server.closeAllConnections();
  if (!(await raceTimer(closing, AFTER_GRACE_MS))) {
    logger.error({ event: 'shutdown_stuck' }, 'server did not close; stopping anyway');
  }
}

/** True when `promise` settles within `ms`. */
async function raceTimer(promise: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What an operator must change when the server cannot listen, naming the variable: a port
 * already taken is the likeliest first-run problem, and its stack trace said nothing of PORT.
 */
export function listenProblem(err: unknown, host: string, port: number): CliError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `${host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new CliError(`PORT: ${where} is already in use; set PORT to a free port`);
    case 'EACCES':
      return new CliError(
        `PORT: not allowed to listen on ${where} (ports below 1024 need privileges)`,
      );
    case 'EADDRNOTAVAIL':
      return new CliError(`HOST: ${host} is not an address of this machine`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return new CliError(`HOST: ${host} is neither an IP address nor a known host name`);
    default:
      return undefined;
  }
}
