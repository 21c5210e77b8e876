/**
 * `warden seed-demo`, run as a user runs it (a child process), on SQLite in a temp dir and,
 * when the config can give the Redis store a key prefix, on the shared Redis under a prefix
 * of its own. Every child is killed after its test; every key it wrote is deleted.
 */
import { randomBytes } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { useCli } from './support/cli.js';
import { checkRedis, gate, TEST_REDIS_URL } from './support/services.js';

const DEMO_PASSWORD = 'demo password 123';
const DOC_ADDRESS_RE = /^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}$|^2001:db8:/;
const DEMO_EMAIL_RE = /^[a-z]+\.[a-z]+\d+@example\.test$/;

const cli = useCli('warden-seed-');
const { run: warden, query, count } = cli;

describe('warden seed-demo on SQLite', () => {
  it('should create the asked numbers of users and sessions, some expired', async () => {
    const started = Date.now();
    const res = await warden(['seed-demo', '--users', '50', '--sessions', '200'], {
      WARDEN_DEMO_PASSWORD: DEMO_PASSWORD,
    });
    const now = Date.now();

    expect(res.code, res.stderr).toBe(0);
    expect(count('select count(*) as n from users')).toBe(50);
    expect(count('select count(*) as n from sessions')).toBe(200);
    const expired = count('select count(*) as n from sessions where expires_at <= ?', now);
    expect(expired).toBeGreaterThan(0);
    expect(expired).toBeLessThan(200);
    expect(res.stdout).toContain(`(${expired} expired)`);
    expect(count("select count(*) as n from session_events where kind = 'signed_in'")).toBe(200);
    expect(res.stdout).toContain('the password in WARDEN_DEMO_PASSWORD');
    expect(res.stdout).not.toContain(DEMO_PASSWORD);
    expect(res.stderr).toContain('seed-demo: sessions 200/200 (100%)');

    const users = query<{
      email: string;
      role: string;
      status: string;
      created_at: number;
      approved_at: number | null;
      rejected_at: number | null;
      decided_at: number | null;
    }>('select email, role, status, created_at, approved_at, rejected_at, decided_at from users');
    for (const u of users) {
      expect(u.email).toMatch(DEMO_EMAIL_RE);
      expect(['user', 'admin', 'superuser']).toContain(u.role);
      expect(u.created_at).toBeLessThan(started);
      // The decision times as the approval workflow writes them, each after the registration.
      const { approved_at: approved, rejected_at: rejected, decided_at: decided } = u;
      if (u.status === 'pending') expect([approved, rejected, decided]).toEqual([null, null, null]);
      if (u.status === 'approved' || u.status === 'disabled') {
        expect(approved).toBeGreaterThan(u.created_at);
        expect([rejected, decided]).toEqual([null, approved]);
      }
      if (u.status === 'rejected') {
        expect(rejected).toBeGreaterThan(u.created_at);
        expect([approved, decided]).toEqual([null, rejected]);
      }
    }
    expect(users.some((u) => u.status === 'approved')).toBe(true);

    const sessions = query<{
      status: string;
      ip: string;
      user_agent: string;
      created_at: number;
      last_seen_at: number;
      approved_at: number;
      expires_at: number;
      idle_expires_at: number;
      absolute_expires_at: number;
    }>(
      `select u.status, s.ip, s.user_agent, s.created_at, s.last_seen_at, u.approved_at,
              s.expires_at, s.idle_expires_at, s.absolute_expires_at
       from sessions s join users u on u.id = s.user_id`,
    );
    for (const s of sessions) {
      expect(s.status).toBe('approved');
      expect(s.ip).toMatch(DOC_ADDRESS_RE);
      expect(s.user_agent).toMatch(/^Mozilla\/5\.0 \(/);
      expect(s.created_at).toBeGreaterThanOrEqual(s.approved_at);
      expect(s.last_seen_at).toBeGreaterThanOrEqual(s.created_at);
      expect(s.expires_at).toBe(Math.min(s.idle_expires_at, s.absolute_expires_at));
    }
    // Users with a session have their last sign-in set from the history.
    expect(
      count(
        `select count(*) as n from users u
         where exists (select 1 from sessions s where s.user_id = u.id)
         and u.last_login_at is null`,
      ),
    ).toBe(0);
  });

  it('should print a generated password when WARDEN_DEMO_PASSWORD is not set', async () => {
    const res = await warden(['seed-demo', '--users', '3', '--sessions', '5']);

    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/signs in with the password: [0-9a-f]{16}\n$/);
  });

  it('should refuse a database with other accounts unless given --force', async () => {
    const created = await warden(['create-superuser', '--email', 'root@example.com'], {
      WARDEN_PASSWORD: 'root password 123',
    });
    expect(created.code, created.stderr).toBe(0);
    const withSuperuser = await warden(['seed-demo', '--users', '5', '--sessions', '5']);
    expect(withSuperuser.code, withSuperuser.stderr).toBe(0);

    const db = new SQLite(cli.dbFile);
    db.prepare(
      `insert into users
         (email, email_normalized, password_hash, role, status, created_at, updated_at)
       values ('real@customer.test', 'real@customer.test', 'x', 'user', 'approved', 0, 0)`,
    ).run();
    db.close();
    const refused = await warden(['seed-demo', '--users', '5', '--sessions', '5']);
    const forced = await warden(['seed-demo', '--users', '5', '--sessions', '5', '--force']);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the database has 1 account besides');
    expect(refused.stderr).toContain('--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(count('select count(*) as n from users')).toBe(1 + 5 + 1 + 5);
    // No demo decision is put in a real superuser's name: none was theirs, and none is audited.
    expect(
      count(
        'select count(*) as n from users where approved_by is not null or rejected_by is not null',
      ),
    ).toBe(0);
  });

  it('should exit 2 on a count that is not a whole number', async () => {
    const res = await warden(['seed-demo', '--users', 'many']);

    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--users');
  });

  it('should exit 2 on sessions asked for with no users to own them, rather than make none', async () => {
    const res = await warden(['seed-demo', '--users', '0', '--sessions', '5']);

    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--sessions needs demo users to own them');
    expect(res.stdout).toBe('');
  });
});

/**
 * The config variable that gives the Redis store its key prefix, if config.ts has one. Without
 * it, seed-demo would write under the default prefix of the shared Redis, which the suite
 * must not touch.
 */
function configuredRedisPrefix(prefix: string): boolean {
  const config = loadConfig({ REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: prefix });
  return config.redisPrefix === prefix;
}

const probePrefix = `warden-test:probe-${randomBytes(4).toString('hex')}:`;
const redisGate = await gate('seed-demo on Redis', () => checkRedis());

if (redisGate.action === 'fail') {
  describe('warden seed-demo on Redis', () => {
    it('should reach Redis (WARDEN_REQUIRE_SERVICES=1)', () => {
      throw new Error(redisGate.reason);
    });
  });
} else if (redisGate.action === 'skip') {
  describe.skip(`warden seed-demo on Redis (${redisGate.reason})`, () => {
    it('needs Redis', () => {});
  });
} else if (!configuredRedisPrefix(probePrefix)) {
  const reason = 'config.ts has no REDIS_PREFIX (redisPrefix) to keep it off the shared keys';
  console.warn(`\n!!! SKIPPING seed-demo on Redis: ${reason}.\n`);
  describe.skip(`warden seed-demo on Redis (${reason})`, () => {
    it('needs a key prefix', () => {});
  });
} else {
  describe('warden seed-demo on Redis', () => {
    const prefix = `warden-test:seed-${randomBytes(6).toString('hex')}:`;
    const redis = createClient({ url: TEST_REDIS_URL });
    redis.on('error', () => {});

    afterEach(async () => {
      if (!redis.isOpen) await redis.connect();
      for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await redis.del(keys);
      }
      redis.destroy();
    });

    it('should write the sessions to Redis under its prefix and the history to SQL', async () => {
      const env = { REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: prefix, SESSION_STORE: 'redis' };
      const res = await warden(['seed-demo', '--users', '50', '--sessions', '200'], env);
      const listed = await warden(['sessions', 'list', '--json', '--status', 'all'], env);

      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain('200 redis sessions');
      await redis.connect();
      expect(await redis.zCard(`${prefix}sessions:by-created`)).toBe(200);
      const expired = await redis.zCount(`${prefix}sessions:by-expiry`, '-inf', Date.now());
      expect(expired).toBeGreaterThan(0);
      expect(expired).toBeLessThan(200);
      expect(count('select count(*) as n from sessions')).toBe(0);
      expect(count("select count(*) as n from session_events where kind = 'signed_in'")).toBe(200);
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout).total).toBe(200);
    });
  });
}
