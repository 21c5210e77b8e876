/**
 * @module config
 * Reads the environment once into a typed, validated and frozen Config.
 * Nothing else in Warden reads `process.env`.
 */
import path from 'node:path';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 3000;
export const DEFAULT_SQLITE_PATH = './data/warden.db';
export const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;
export const DEFAULT_ABSOLUTE_LIFETIME_MS = 12 * 3_600_000;
export const DEFAULT_RETENTION_MS = 7 * 86_400_000;
export const DEFAULT_TOUCH_INTERVAL_MS = 60_000;
export const DEFAULT_STORE_TIMEOUT_MS = 500;
export const DEFAULT_DATABASE_TIMEOUT_MS = 5_000;
export const DEFAULT_BULK_REVOKE_MAX = 1_000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
export const DEFAULT_CLEANUP_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_STEP_UP_WINDOW_MS = 5 * 60_000;
export const DEFAULT_STEP_UP_BULK_THRESHOLD = 50;
export const DEFAULT_SIGN_IN_LIMIT_ACCOUNT = 10;
export const DEFAULT_SIGN_IN_LIMIT_IP = 50;
export const DEFAULT_SIGN_IN_LIMIT_WINDOW_MS = 15 * 60_000;
export const DEFAULT_SESSION_CACHE_MAX = 100_000;

export type Database = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

export interface Config {
  /** Address to bind. @default 127.0.0.1 */
  readonly host: string;
  /** TCP port. @default 3000 */
  readonly port: number;
  /** Users, events, audit and (with the SQL store) sessions. @default SQLite at ./data/warden.db */
  readonly database: Database;
  /** When set, sessions live in Redis unless `sessionStore` says `sql`. */
  readonly redisUrl: string | undefined;
  /** Put before every Redis key, so several deployments can share one Redis. @default 'warden:' */
  readonly redisPrefix: string | undefined;
  /** Where sessions live. @default 'redis' when REDIS_URL is set, else 'sql' */
  readonly sessionStore: 'sql' | 'redis';
  /** A session unused this long expires, in milliseconds. @default 30 minutes */
  readonly idleTimeoutMs: number;
  /** A session expires this long after sign-in whatever its use, in milliseconds. @default 12 hours */
  readonly absoluteLifetimeMs: number;
  /** Expired sessions stay listed as expired this long before cleanup, in milliseconds. @default 7 days */
  readonly retentionMs: number;
  /** `last_seen` is written at most once per interval per session, in milliseconds. @default 1 minute */
  readonly touchIntervalMs: number;
  /** Every store call gives up after this long, in milliseconds. @default 500 */
  readonly storeTimeoutMs: number;
  /** Every PostgreSQL query, and every wait for a connection, gives up after this long, in milliseconds. @default 5 seconds */
  readonly databaseTimeoutMs: number;
  /** Mark the session cookie Secure. @default false (true is implied behind HTTPS) */
  readonly cookieSecure: boolean;
  /** Trust X-Forwarded-* from these proxies (`true`, a hop count, or addresses/CIDRs). @default false */
  readonly trustProxy: boolean | number | string[];
  /** Largest number of ids one bulk revoke accepts. @default 1000 */
  readonly bulkRevokeMax: number;
  /** Time given to requests in flight on SIGTERM, in milliseconds. @default 10 seconds */
  readonly shutdownGraceMs: number;
  /** Expired sessions past retention are removed this often, in milliseconds; 0 disables. @default 5 minutes */
  readonly cleanupIntervalMs: number;
  /** pino level. @default info */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * Bearer token that `GET /metrics` requires; when unset, /metrics answers loopback clients
   * only. @default unset
   */
  readonly metricsToken: string | undefined;
  /** A superuser's password, entered this long ago at most, covers a sensitive action, in milliseconds. @default 5 minutes */
  readonly stepUpWindowMs: number;
  /** A bulk revoke of more ids than this asks for the password again. @default 50 */
  readonly stepUpBulkThreshold: number;
  /** Failed sign-ins (or password checks) one account may have per window. @default 10 */
  readonly signInLimitAccount: number;
  /** Failed sign-ins one client IP may have per window. @default 50 */
  readonly signInLimitIp: number;
  /** The window the sign-in limits count over, in milliseconds. @default 15 minutes */
  readonly signInLimitWindowMs: number;
  /**
   * Sessions `warden serve` keeps in memory for validation with Redis sessions, each until
   * Redis reports a change to it (client-side caching); 0 reads Redis on every request.
   * @default 100000
   */
  readonly sessionCacheMax: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** What a text that is no duration is told, after its own quoted value. */
export const NOT_A_DURATION = 'is not a duration (use e.g. 90s, 15m, 12h, 7d)';

/** `90`, `90s`, `15m`, `12h`, `7d` or `250ms` in milliseconds (a bare number is seconds), zero
 * included; undefined when the text is no duration. */
export function durationMs(raw: string): number | undefined {
  const match = DURATION_RE.exec(raw.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 's') as keyof typeof UNIT_MS;
  return Math.round(Number(match[1]) * UNIT_MS[unit]);
}

/** durationMs of a setting, which must be one and greater than zero. */
export function parseDuration(variable: string, raw: string): number {
  const ms = durationMs(raw);
  if (ms === undefined) throw new ConfigError(variable, `"${raw}" ${NOT_A_DURATION}`);
  if (ms <= 0) throw new ConfigError(variable, 'must be greater than zero');
  return ms;
}

function parseInteger(variable: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(variable, `"${raw}" is not a whole number`);
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(variable, `${value} is out of range (${min} to ${max})`);
  }
  return value;
}

function parseBoolean(variable: string, raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(value)) return false;
  throw new ConfigError(variable, `"${raw}" is not a boolean (use true or false)`);
}

function parseDatabase(raw: string | undefined): Database {
  if (raw === undefined || raw.trim() === '') {
    return { kind: 'sqlite', file: path.resolve(DEFAULT_SQLITE_PATH) };
  }
  if (/^postgres(ql)?:\/\//.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new ConfigError('DATABASE_URL', 'is not a valid postgres:// URL');
    }
    return { kind: 'postgres', url: raw };
  }
  const file = raw.startsWith('sqlite:') ? raw.slice('sqlite:'.length).replace(/^\/\//, '') : raw;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(file)) {
    throw new ConfigError('DATABASE_URL', 'must be postgres://…, sqlite:PATH or a file path');
  }
  if (file === '') throw new ConfigError('DATABASE_URL', 'sqlite: needs a file path');
  return { kind: 'sqlite', file: file === ':memory:' ? file : path.resolve(file) };
}

function parseRedisUrl(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('REDIS_URL', 'is not a valid URL (use redis://host:port)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError('REDIS_URL', 'must start with redis:// or rediss://');
  }
  return raw;
}

function parseTrustProxy(raw: string | undefined): Config['trustProxy'] {
  if (raw === undefined || raw.trim() === '') return false;
  const value = raw.trim();
  if (/^(true|false|1|0|yes|no)$/i.test(value)) return parseBoolean('TRUST_PROXY', value);
  if (/^\d+$/.test(value)) return parseInteger('TRUST_PROXY', value, 1, 100);
  const parts = value.split(',').map((p) => p.trim());
  for (const part of parts) {
    if (!/^[0-9a-f.:]+(\/\d{1,3})?$/i.test(part)) {
      throw new ConfigError('TRUST_PROXY', `"${part}" is not an IP address or CIDR range`);
    }
  }
  return parts;
}

/** Long enough not to be guessed, and free of what a header would mangle. */
function parseMetricsToken(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^[\x21-\x7e]+$/.test(raw)) {
    throw new ConfigError('METRICS_TOKEN', 'must be printable ASCII without spaces');
  }
  if (raw.length < 16) throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters');
  return raw;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Builds the Config from an environment; throws ConfigError naming the first bad variable.
 * @example loadConfig({ PORT: '8080', IDLE_TIMEOUT: '15m' })
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const get = (name: string) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const duration = (name: string, fallback: number) => {
    const raw = get(name);
    return raw === undefined ? fallback : parseDuration(name, raw);
  };
  const integer = (name: string, fallback: number, min: number) => {
    const raw = get(name);
    return raw === undefined ? fallback : parseInteger(name, raw, min, 1_000_000);
  };

  const redisUrl = parseRedisUrl(get('REDIS_URL'));
  const redisPrefix = get('REDIS_PREFIX');
  // A brace would start a Redis Cluster hash tag of its own and split a user's keys.
  if (redisPrefix !== undefined && !/^[A-Za-z0-9:._-]{1,64}$/.test(redisPrefix)) {
    throw new ConfigError('REDIS_PREFIX', 'use 1 to 64 letters, digits, ":", ".", "_" or "-"');
  }
  const storeRaw = get('SESSION_STORE');
  if (storeRaw !== undefined && storeRaw !== 'sql' && storeRaw !== 'redis') {
    throw new ConfigError('SESSION_STORE', `"${storeRaw}" is not sql or redis`);
  }
  if (storeRaw === 'redis' && redisUrl === undefined) {
    throw new ConfigError('SESSION_STORE', 'is redis but REDIS_URL is not set');
  }
  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `"${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  }

  const config: Config = {
    host: get('HOST') ?? DEFAULT_HOST,
    port:
      get('PORT') === undefined ? DEFAULT_PORT : parseInteger('PORT', get('PORT') ?? '', 0, 65535),
    database: parseDatabase(get('DATABASE_URL')),
    redisUrl,
    redisPrefix,
    sessionStore: (storeRaw as 'sql' | 'redis' | undefined) ?? (redisUrl ? 'redis' : 'sql'),
    idleTimeoutMs: duration('IDLE_TIMEOUT', DEFAULT_IDLE_TIMEOUT_MS),
    absoluteLifetimeMs: duration('ABSOLUTE_LIFETIME', DEFAULT_ABSOLUTE_LIFETIME_MS),
    retentionMs: duration('SESSION_RETENTION', DEFAULT_RETENTION_MS),
    touchIntervalMs: duration('TOUCH_INTERVAL', DEFAULT_TOUCH_INTERVAL_MS),
    storeTimeoutMs: duration('STORE_TIMEOUT', DEFAULT_STORE_TIMEOUT_MS),
    databaseTimeoutMs: duration('DATABASE_TIMEOUT', DEFAULT_DATABASE_TIMEOUT_MS),
    cookieSecure: parseBoolean('COOKIE_SECURE', get('COOKIE_SECURE') ?? 'false'),
    trustProxy: parseTrustProxy(get('TRUST_PROXY')),
    bulkRevokeMax:
      get('BULK_REVOKE_MAX') === undefined
        ? DEFAULT_BULK_REVOKE_MAX
        : parseInteger('BULK_REVOKE_MAX', get('BULK_REVOKE_MAX') ?? '', 1, 100_000),
    shutdownGraceMs: duration('SHUTDOWN_GRACE', DEFAULT_SHUTDOWN_GRACE_MS),
    // Zero is allowed here only: it turns the scheduled cleanup off.
    cleanupIntervalMs: /^0+(\.0*)?\s*(ms|s|m|h|d)?$/.test(get('CLEANUP_INTERVAL')?.trim() ?? '')
      ? 0
      : duration('CLEANUP_INTERVAL', DEFAULT_CLEANUP_INTERVAL_MS),
    logLevel: logLevel as Config['logLevel'],
    metricsToken: parseMetricsToken(get('METRICS_TOKEN')),
    stepUpWindowMs: duration('STEP_UP_WINDOW', DEFAULT_STEP_UP_WINDOW_MS),
    stepUpBulkThreshold: integer('STEP_UP_BULK_THRESHOLD', DEFAULT_STEP_UP_BULK_THRESHOLD, 1),
    signInLimitAccount: integer('SIGN_IN_LIMIT_ACCOUNT', DEFAULT_SIGN_IN_LIMIT_ACCOUNT, 1),
    signInLimitIp: integer('SIGN_IN_LIMIT_IP', DEFAULT_SIGN_IN_LIMIT_IP, 1),
    signInLimitWindowMs: duration('SIGN_IN_LIMIT_WINDOW', DEFAULT_SIGN_IN_LIMIT_WINDOW_MS),
    sessionCacheMax: integer('SESSION_CACHE_MAX', DEFAULT_SESSION_CACHE_MAX, 0),
  };

  if (config.idleTimeoutMs > config.absoluteLifetimeMs) {
    throw new ConfigError('IDLE_TIMEOUT', 'must not be longer than ABSOLUTE_LIFETIME');
  }
  if (config.touchIntervalMs >= config.idleTimeoutMs) {
    throw new ConfigError('TOUCH_INTERVAL', 'must be shorter than IDLE_TIMEOUT');
  }
  return Object.freeze(config);
}
