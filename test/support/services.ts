/**
 * Which real services the integration suites can use, and what to do when one is missing:
 * skip loudly on a laptop, fail in CI (`WARDEN_REQUIRE_SERVICES=1`), so a missing service can
 * never turn a red build green by skipping.
 */
import os from 'node:os';
import pg from 'pg';
import { createClient } from 'redis';

/** Loopback only: the suites never aim at another host. */
export const TEST_REDIS_URL = 'redis://127.0.0.1:6379';
/**
 * The maintenance database the suites create their own databases from (trust auth). The user
 * is filled in as libpq does it (PGUSER, else the OS user): node-postgres would use $USER,
 * which is often unset under CI runners and containers.
 */
export const TEST_POSTGRES_URL = withDefaultUser('postgres://127.0.0.1:5432/test');

function withDefaultUser(raw: string): string {
  const url = new URL(raw);
  if (url.username === '') url.username = process.env.PGUSER || os.userInfo().username;
  return url.toString();
}

const CHECK_TIMEOUT_MS = 2_000;

export type Availability = { ok: true } | { ok: false; reason: string };

/** What a suite does about a service: run it, skip it, or fail because CI requires it. */
export type Gate = { action: 'run' } | { action: 'skip' | 'fail'; reason: string };

function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  return error instanceof Error ? error.message || error.name : String(error);
}

export async function checkRedis(url = TEST_REDIS_URL): Promise<Availability> {
  const client = createClient({
    url,
    socket: { connectTimeout: CHECK_TIMEOUT_MS, reconnectStrategy: false },
  });
  // Without a listener a failed connect would also surface as an unhandled 'error' event.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `Redis at ${url} is not reachable (${reasonOf(error)})` };
  } finally {
    if (client.isOpen) client.destroy();
  }
}

export async function checkPostgres(url = TEST_POSTGRES_URL): Promise<Availability> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: CHECK_TIMEOUT_MS,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `PostgreSQL at ${url} is not reachable (${reasonOf(error)})` };
  } finally {
    await client.end().catch(() => {});
  }
}

/** True when CI asks for every service to be there (`WARDEN_REQUIRE_SERVICES=1`). */
export function servicesRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.WARDEN_REQUIRE_SERVICES === '1';
}

/**
 * Decides whether a suite needing a service runs; on skip, warns on the console so the gap
 * shows in every run's output.
 */
export async function gate(
  suite: string,
  check: () => Promise<Availability>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Gate> {
  const availability = await check();
  if (availability.ok) return { action: 'run' };

  if (servicesRequired(env)) return { action: 'fail', reason: availability.reason };
  console.warn(
    `\n!!! SKIPPING ${suite}: ${availability.reason}.\n` +
      '!!! Start the service, or set WARDEN_REQUIRE_SERVICES=1 to make this a failure.\n',
  );
  return { action: 'skip', reason: availability.reason };
}

/**
 * Every name `STORES` may hold, across the suites that read it: the store contract names the
 * stores, the route suites name whole setups. One variable narrows them all, so a name is a
 * typo only when no suite knows it.
 */
export const STORE_NAMES = ['sql-sqlite', 'sql-postgres', 'redis', 'sqlite', 'redis+postgres'];

/**
 * The names in `STORES` (comma separated) that are among `known`, or all of `known` when unset.
 * Throws on a name no suite knows, so a typo cannot quietly run nothing.
 */
export function selectedStores<T extends string>(
  known: readonly T[],
  env: NodeJS.ProcessEnv = process.env,
): T[] {
  const raw = env.STORES?.trim();
  if (!raw) return [...known];

  const wanted = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((s) => !STORE_NAMES.includes(s));
  if (unknown.length > 0) {
    throw new Error(
      `STORES names unknown stores: ${unknown.join(', ')} (known: ${STORE_NAMES.join(', ')})`,
    );
  }
  return known.filter((k) => wanted.includes(k));
}
