import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDuration } from '../../src/config.js';

function problem(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('should default to SQLite under ./data on 127.0.0.1:3000 with the SQL store', () => {
    const c = loadConfig({});
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBe(3000);
    expect(c.database).toEqual({ kind: 'sqlite', file: path.resolve('data/warden.db') });
    expect(c.sessionStore).toBe('sql');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('should keep sessions in Redis when REDIS_URL is set, unless SESSION_STORE=sql', () => {
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).sessionStore).toBe('redis');
    expect(
      loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', SESSION_STORE: 'sql' }).sessionStore,
    ).toBe('sql');
  });

  it('should read PostgreSQL URLs and durations with units', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://u@127.0.0.1:5432/w',
      IDLE_TIMEOUT: '15m',
      ABSOLUTE_LIFETIME: '2h',
      TOUCH_INTERVAL: '250ms',
    });
    expect(c.database).toEqual({ kind: 'postgres', url: 'postgres://u@127.0.0.1:5432/w' });
    expect(c.idleTimeoutMs).toBe(900_000);
    expect(c.absoluteLifetimeMs).toBe(7_200_000);
    expect(c.touchIntervalMs).toBe(250);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ IDLE_TIMEOUT: '10 minutes' }, 'IDLE_TIMEOUT'],
    [{ IDLE_TIMEOUT: '0' }, 'IDLE_TIMEOUT'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL'],
    [{ SESSION_STORE: 'memcached' }, 'SESSION_STORE'],
    [{ SESSION_STORE: 'redis' }, 'SESSION_STORE'],
    [{ COOKIE_SECURE: 'maybe' }, 'COOKIE_SECURE'],
    [{ TRUST_PROXY: 'not-an-ip' }, 'TRUST_PROXY'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ IDLE_TIMEOUT: '2d', ABSOLUTE_LIFETIME: '1d' }, 'IDLE_TIMEOUT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ BULK_REVOKE_MAX: '0' }, 'BULK_REVOKE_MAX'],
  ])('should refuse %o naming %s', (env, variable) => {
    expect(problem(env)).toMatch(new RegExp(`^${variable}: `));
  });

  it('should parse every duration unit', () => {
    expect(parseDuration('X', '90')).toBe(90_000);
    expect(parseDuration('X', '1.5h')).toBe(5_400_000);
    expect(parseDuration('X', '7d')).toBe(604_800_000);
  });
});
