/**
 * Validation answered from memory under Redis's change reports (sessions/tracked-reads.ts), as
 * `warden serve` runs it, over real HTTP on loopback: no Redis command for a known session, yet
 * a revocation or a disable made elsewhere shows on the very next request, a cut connection
 * forgets everything, and a silent Redis is not trusted past DEFAULT_STALE_MS.
 */
import SQLite from 'better-sqlite3';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createTrackingClient } from '../../src/runtime.js';
import { RedisSessionStore } from '../../src/sessions/redis-store.js';
import type { SqlSessionStore } from '../../src/sessions/sql-store.js';
import { sessionIdOf } from '../../src/sessions/tokens.js';
import { DEFAULT_STALE_MS, TrackedReads } from '../../src/sessions/tracked-reads.js';
import { UserRepo } from '../../src/users/user-repo.js';
import { redisUserVersions } from '../../src/users/user-versions.js';
import { sleep, startWarden, type Warden } from '../faults/harness.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';

/** A new user, signed in; returns the session cookie, the session id and the user id. */
async function signInNew(w: Warden, email: string) {
  const userId = await w.createUser(email);
  const c = w.client();
  await c.login(email);
  const token = c.cookies.get('warden_session');
  expect(token).toBeDefined();
  return { cookie: `warden_session=${token}`, id: sessionIdOf(token!), userId };
}

/** `GET /api/auth/session` over real HTTP, as a service of the user's would call it. */
async function whoamiOver(base: string, cookie: string): Promise<number> {
  const res = await fetch(`${base}/api/auth/session`, { headers: { cookie } });
  await res.arrayBuffer();
  return res.status;
}

describe.skipIf(!redisServerAvailable() && !servicesRequired())('tracked reads', () => {
  let own: OwnRedis;
  let w: Warden;
  let base: string;
  // "Another instance": a client and a store of its own on the same Redis, nothing in memory.
  let other: ReturnType<typeof createClient>;
  let otherStore: RedisSessionStore;
  let n = 0;

  beforeAll(async () => {
    own = await startOwnRedis();
    w = await startWarden({ env: { REDIS_URL: own.url } });
    base = await w.app.listen({ host: '127.0.0.1', port: 0 });
    other = createClient({ url: own.url });
    other.on('error', () => {});
    await other.connect();
    otherStore = new RedisSessionStore({
      client: other,
      resolveUserIds: async () => [],
      retentionMs: w.config.retentionMs,
    });
  }, 30_000);

  afterAll(async () => {
    own?.resume();
    if (other?.isOpen) other.destroy();
    await w?.close();
    await own?.stop();
  });

  const signedIn = () => signInNew(w, `p${n++}@example.test`);
  const whoami = (cookie: string) => whoamiOver(base, cookie);

  it('should validate a known session without sending Redis a command', async () => {
    const { cookie } = await signedIn();
    expect(await whoami(cookie)).toBe(200);
    await sleep(50);
    const before = await other.info('commandstats');
    const hitsBefore = w.runtime.trackedReads!.stats().hits;
    for (let i = 0; i < 50; i++) expect(await whoami(cookie)).toBe(200);
    const after = await other.info('commandstats');
    const calls = (text: string, cmd: string) =>
      Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(text)?.[1] ?? 0);
    // Heartbeat PINGs go on; no session or counter read does.
    expect(calls(after, 'hgetall') - calls(before, 'hgetall')).toBe(0);
    expect(calls(after, 'get') - calls(before, 'get')).toBe(0);
    // One hit per validation (the users' counter read beside it is not counted).
    expect(w.runtime.trackedReads!.stats().hits - hitsBefore).toBe(50);
  });

  it('should refuse a session revoked by another instance on the very next request', async () => {
    for (let round = 0; round < 40; round++) {
      const { cookie, id } = await signedIn();
      expect(await whoami(cookie)).toBe(200);
      expect(await whoami(cookie)).toBe(200);
      expect(await otherStore.delete(id)).toBe('deleted');
      expect(await whoami(cookie), `round ${round}`).toBe(401);
    }
  });

  it('should refuse a user disabled by another process on the very next request', async () => {
    const database = openDatabase(w.config.database);
    try {
      // As `warden` commands change users: their own repo, raising the shared counter.
      const repo = new UserRepo(database.db, database.dialect);
      repo.useVersions(redisUserVersions(other, 'warden:'));
      for (let round = 0; round < 5; round++) {
        const { cookie, userId } = await signedIn();
        expect(await whoami(cookie)).toBe(200);
        expect(await whoami(cookie)).toBe(200);
        await repo.setStatus(userId, 'disabled', null, Date.now());
        expect(await whoami(cookie), `round ${round}`).toBe(401);
      }
    } finally {
      await database.close();
    }
  });

  it('should hold no session it revoked itself, one or all of a user, once the revocation answers', async () => {
    const store = w.runtime.store;
    for (let round = 0; round < 20; round++) {
      const { cookie, id, userId } = await signedIn();
      expect(await whoami(cookie)).toBe(200);
      expect(await whoami(cookie)).toBe(200);
      expect(store.peek?.(id), `round ${round}: known before`).toBeDefined();
      const report =
        round % 2 === 0
          ? await w.runtime.sessions.revokeUser(userId, { actorId: null })
          : await w.runtime.sessions.revokeIds([id], { actorId: null });
      expect(report.counts.revoked).toBe(1);
      // Read in the same turn as the answer: no invalidation from Redis can have come yet.
      expect(store.peek?.(id), `round ${round}: kept after its revocation`).toBeUndefined();
      expect(await whoami(cookie), `round ${round}`).toBe(401);
    }
  });

  it('should forget everything when its connection is cut, and still see what changed meanwhile', async () => {
    const { cookie, id } = await signedIn();
    expect(await whoami(cookie)).toBe(200);
    expect(await whoami(cookie)).toBe(200);
    const resets = w.runtime.trackedReads!.stats().resets;
    // The tracking connection is the one whose CLIENT LIST flags carry `t`.
    const list = await other.clientList();
    const tracking = list.filter((c) => c.flags.includes('t'));
    expect(tracking).toHaveLength(1);
    await other.clientKill({ filter: 'ID', id: Number(tracking[0]!.id) });
    // Changes made while it is away reach no invalidation; the emptied cache reads them.
    expect(await otherStore.delete(id)).toBe('deleted');
    expect(await whoami(cookie)).toBe(401);
    expect(w.runtime.trackedReads!.stats().resets).toBeGreaterThan(resets);
  });

  it('should keep validating over the main connection while the tracking one is gone', async () => {
    const { cookie, id } = await signedIn();
    expect(await whoami(cookie)).toBe(200);
    const tracking = w.runtime.trackedReads!.client as unknown as { destroy(): void };
    tracking.destroy();
    try {
      for (let i = 0; i < 5; i++) expect(await whoami(cookie)).toBe(200);
      expect(await otherStore.delete(id)).toBe('deleted');
      expect(await whoami(cookie)).toBe(401);
    } finally {
      await (
        w.runtime.trackedReads!.client as unknown as { connect(): Promise<unknown> }
      ).connect();
    }
  });

  it('should stop answering from memory once a paused Redis has been silent for the bound', async () => {
    const { cookie } = await signedIn();
    expect(await whoami(cookie)).toBe(200);
    expect(await whoami(cookie)).toBe(200);
    own.pause();
    try {
      await sleep(DEFAULT_STALE_MS + 150);
      expect(await whoami(cookie)).toBe(503);
    } finally {
      own.resume();
    }
    await sleep(300);
    expect(await whoami(cookie)).toBe(200);
  });
});

describe('sessions kept in memory on SQLite', () => {
  let w: Warden;
  let base: string;
  let n = 0;

  beforeAll(async () => {
    w = await startWarden();
    base = await w.app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await w?.close();
  });

  const signedIn = () => signInNew(w, `q${n++}@example.test`);
  const whoami = (cookie: string) => whoamiOver(base, cookie);

  const memory = () => (w.runtime.store as SqlSessionStore).memoryStats()!;

  it('should answer a known session from memory', async () => {
    const { cookie } = await signedIn();
    // The first validation after the sign-in's write finds nothing: a miss.
    const misses = memory().misses;
    expect(await whoami(cookie)).toBe(200);
    expect(memory().misses - misses).toBe(1);
    const hits = memory().hits;
    for (let i = 0; i < 20; i++) expect(await whoami(cookie)).toBe(200);
    expect(memory().hits - hits).toBe(20);

    // What an operator sees of it.
    const metrics = (await w.app.inject({ url: '/metrics' })).body;
    const hitsShown = /^warden_session_cache_reads_total\{result="hit"\} (\d+)$/m.exec(metrics);
    expect(Number(hitsShown?.[1])).toBe(memory().hits);
    expect(metrics).toMatch(/^warden_session_cache_entries [1-9]\d*$/m);
  });

  it('should refuse a session another process deleted, and a user it disabled, on the next request', async () => {
    // As `warden sessions revoke` and `warden users` do it: a connection of their own.
    const other = new SQLite(w.config.database.kind === 'sqlite' ? w.config.database.file : '');
    try {
      for (let round = 0; round < 10; round++) {
        const { cookie, id, userId } = await signedIn();
        expect(await whoami(cookie)).toBe(200);
        expect(await whoami(cookie)).toBe(200);
        if (round % 2 === 0) other.prepare('delete from sessions where id = ?').run(id);
        else other.prepare("update users set status = 'disabled' where id = ?").run(userId);
        expect(await whoami(cookie), `round ${round}`).toBe(401);
      }
    } finally {
      other.close();
    }
  });

  it('should refuse a session revoked through this server on the next request', async () => {
    await w.createUser('root@example.test', 'superuser');
    const admin = w.client();
    await admin.login('root@example.test');
    const { cookie, id } = await signedIn();
    expect(await whoami(cookie)).toBe(200);
    expect(await whoami(cookie)).toBe(200);
    const res = await admin.postJson('/admin/sessions/bulk-revoke', { ids: [id] });
    expect(res.statusCode).toBe(200);
    expect(await whoami(cookie)).toBe(401);
  });
});

describe.skipIf(!redisServerAvailable() && !servicesRequired())('TrackedReads', () => {
  let own: OwnRedis;
  let client: ReturnType<typeof createTrackingClient>;
  let writer: ReturnType<typeof createClient>;

  beforeAll(async () => {
    own = await startOwnRedis();
    client = createTrackingClient(own.url);
    writer = createClient({ url: own.url });
    writer.on('error', () => {});
    await writer.connect();
  });

  afterAll(async () => {
    if (client?.isOpen) client.destroy();
    if (writer?.isOpen) writer.destroy();
    await own?.stop();
  });

  const read = (t: TrackedReads, key: string) =>
    t.load(
      key,
      (c) => c.get(key),
      (v) => v !== null,
    );

  it('should not keep a read whose key changed while its reply was on the way', async () => {
    const t = new TrackedReads(client);
    await client.connect();
    try {
      await writer.set('k:race', 'old');
      const pending = read(t, 'k:race');
      // As an invalidation parsed behind the reply, before the reply's promise resolves.
      t.forget('k:race');
      expect(await pending).toBe('old');
      expect(t.peek('k:race')).toBeUndefined();
      // The next read is kept, and a write elsewhere drops it.
      expect(await read(t, 'k:race')).toBe('old');
      expect(t.peek('k:race')).toBe('old');
      await writer.set('k:race', 'new');
      await t.sync();
      expect(t.peek('k:race')).toBeUndefined();
      expect(await read(t, 'k:race')).toBe('new');
    } finally {
      t.close();
    }
  });

  it('should keep at most maxEntries values, dropping the oldest', async () => {
    const t = new TrackedReads(client, { maxEntries: 3 });
    try {
      for (const k of ['a', 'b', 'c', 'd']) {
        await writer.set(`k:${k}`, k);
        await read(t, `k:${k}`);
      }
      expect(t.stats().size).toBe(3);
      expect(t.peek('k:a')).toBeUndefined();
      expect(t.peek('k:d')).toBe('d');
    } finally {
      t.close();
    }
  });
});
