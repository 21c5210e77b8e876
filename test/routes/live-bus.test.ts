/**
 * The LiveBus on its own (in-process and Redis pub/sub) and the hub that turns it into
 * Server-Sent Events: what counts as an event, listeners that throw, instances that share a
 * prefix and those that do not, junk on the channel, a Redis that goes away and comes back;
 * the heartbeat, the re-check of each viewer, and slow readers.
 */
import { randomBytes } from 'node:crypto';
import type { PassThrough } from 'node:stream';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveHub } from '../../src/admin/live-stream.js';
import {
  createLocalLiveBus,
  createRedisLiveBus,
  type LiveBus,
  type LiveEvent,
  parseLiveEvent,
} from '../../src/events/live.js';
import { makeApp, type TestApp } from '../support/app.js';
import { redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { checkRedis, gate, TEST_REDIS_URL } from '../support/services.js';
import { plantSession, unknownId } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ID = 'a'.repeat(64);

/** Collects what a bus delivers; `next` waits for the first event matching. */
function collect(bus: LiveBus) {
  const got: LiveEvent[] = [];
  const stop = bus.subscribe((e) => got.push(e));
  return {
    got,
    stop,
    async next(test: (e: LiveEvent) => boolean, timeoutMs = 2_000): Promise<LiveEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = got.find(test);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching event; got ${JSON.stringify(got)}`);
        await sleep(10);
      }
    },
  };
}

describe('parseLiveEvent', () => {
  it('should accept the events the session service sends', () => {
    const events: LiveEvent[] = [
      { type: 'signed_in', sessionId: ID, userId: 3, at: 1 },
      { type: 'signed_out', sessionId: ID, userId: 3, at: 1 },
      { type: 'revoked', sessionIds: [ID, 'b'.repeat(64)], reason: 'user_disabled', at: 1 },
      { type: 'cleaned_up', count: 12, at: 1 },
      { type: 'resync', at: 1 },
    ];
    for (const e of events) expect(parseLiveEvent(JSON.stringify(e))).toEqual(e);
  });

  it.each([
    ['not JSON', '{'],
    ['an unknown type', JSON.stringify({ type: 'dropped', at: 1 })],
    [
      'a token where a digest belongs',
      JSON.stringify({
        type: 'signed_in',
        sessionId: randomBytes(32).toString('base64url'),
        userId: 1,
        at: 1,
      }),
    ],
    [
      'any field beyond the event',
      JSON.stringify({ type: 'signed_in', sessionId: ID, userId: 1, at: 1, token: 'x' }),
    ],
    ['a negative count', JSON.stringify({ type: 'cleaned_up', count: -1, at: 1 })],
  ])('should refuse %s', (_what, raw) => {
    expect(parseLiveEvent(raw)).toBeNull();
  });
});

describe('in-process bus', () => {
  it('should deliver to every listener until it unsubscribes, past one that throws', () => {
    const errors: string[] = [];
    const bus = createLocalLiveBus({ onError: (_err, what) => errors.push(what) });
    bus.subscribe(() => {
      throw new Error('a broken console');
    });
    const a = collect(bus);
    const b = collect(bus);
    bus.publish({ type: 'cleaned_up', count: 1, at: 1 });
    b.stop();
    bus.publish({ type: 'cleaned_up', count: 2, at: 2 });

    expect(a.got.map((e) => e.at)).toEqual([1, 2]);
    expect(b.got.map((e) => e.at)).toEqual([1]);
    expect(errors).toEqual(['listener', 'listener']);
  });
});

const redisGate = await gate('Redis live bus tests', () => checkRedis());
if (redisGate.action === 'fail') throw new Error(`required service missing: ${redisGate.reason}`);

describe.skipIf(redisGate.action !== 'run')('Redis bus', () => {
  const clients: ReturnType<typeof createClient>[] = [];
  const buses: LiveBus[] = [];
  const prefix = `warden-test:${randomBytes(6).toString('hex')}:`;

  async function bus(p = prefix, onError?: (err: unknown, what: string) => void) {
    const client = createClient({ url: TEST_REDIS_URL, disableOfflineQueue: true });
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    const b = createRedisLiveBus({ client, prefix: p, onError });
    await b.start();
    buses.push(b);
    return { bus: b, client };
  }

  afterAll(async () => {
    for (const b of buses) await b.close();
    for (const c of clients) c.destroy();
  });

  it('should deliver to every instance on the same prefix, and to none on another', async () => {
    const a = await bus();
    const b = await bus();
    const stranger = await bus(`warden-test:${randomBytes(6).toString('hex')}:`);
    const atA = collect(a.bus);
    const atB = collect(b.bus);
    const atStranger = collect(stranger.bus);

    const event: LiveEvent = {
      type: 'revoked',
      sessionIds: [unknownId()],
      reason: 'revoked',
      at: 7,
    };
    a.bus.publish(event);
    expect(await atB.next((e) => e.at === 7)).toEqual(event);
    expect(await atA.next((e) => e.at === 7)).toEqual(event);
    await sleep(100);
    expect(atStranger.got).toEqual([]);
  });

  it('should drop and report a message on the channel that is not an event', async () => {
    const errors: string[] = [];
    const a = await bus(prefix, (_err, what) => errors.push(what));
    const got = collect(a.bus);
    await a.client.publish(`${prefix}live`, JSON.stringify({ type: 'signed_in', token: 'x' }));
    a.bus.publish({ type: 'cleaned_up', count: 0, at: 99 });
    await got.next((e) => e.at === 99);
    expect(got.got).toHaveLength(1);
    expect(errors).toEqual(['message']);
  });

  it.skipIf(!redisServerAvailable())(
    'should report a failed publish once per outage, and resync its listeners when Redis returns',
    async () => {
      const redis = await startOwnRedis();
      const errors: string[] = [];
      const client = createClient({
        url: redis.url,
        disableOfflineQueue: true,
        socket: { reconnectStrategy: () => 50 },
      });
      client.on('error', () => {});
      await client.connect();
      const b = createRedisLiveBus({
        client,
        prefix,
        onError: (_err, what) => errors.push(what),
      });
      try {
        await b.start();
        const got = collect(b);

        await redis.kill();
        await sleep(100);
        for (let i = 0; i < 5; i++) b.publish({ type: 'cleaned_up', count: i, at: i });
        await sleep(100);
        expect(errors.filter((e) => e === 'publish')).toHaveLength(1);
        expect(errors.filter((e) => e === 'subscriber')).toHaveLength(1);

        await redis.start();
        expect(await got.next((e) => e.type === 'resync', 5_000)).toMatchObject({ type: 'resync' });
        // Nothing published during the outage arrives late.
        expect(got.got.filter((e) => e.type === 'cleaned_up')).toEqual([]);
        b.publish({ type: 'cleaned_up', count: 1, at: 123 });
        await got.next((e) => e.at === 123);
      } finally {
        await b.close();
        client.destroy();
        await redis.stop();
      }
    },
  );
});

describe('LiveHub', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await makeApp('sqlite');
  });
  afterAll(async () => {
    await t?.close();
  });

  /** What a stream has written so far, as text (nobody else reads it). */
  function reader(out: PassThrough) {
    let text = '';
    out.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    return () => text;
  }

  function hub(bus: LiveBus, heartbeatMs = 60_000) {
    return new LiveHub({
      bus,
      store: t.app.warden.store,
      users: t.app.warden.users.repo,
      clock: Date.now,
      log: t.app.log,
      heartbeatMs,
    });
  }

  it('should beat every heartbeat and say goodbye to a viewer whose session expired or who lost the role', async () => {
    const root = await t.createUser('hub-root@example.com', 'superuser');
    const demoted = await t.createUser('hub-demoted@example.com', 'superuser');
    const lasting = await plantSession(t, root.id);
    const expiring = await plantSession(t, root.id);
    const ofDemoted = await plantSession(t, demoted.id);
    const h = hub(createLocalLiveBus(), 100);

    const ok = h.open({ sessionId: lasting.id, userId: root.id });
    const gone = h.open({ sessionId: expiring.id, userId: root.id });
    const forbidden = h.open({ sessionId: ofDemoted.id, userId: demoted.id });
    const text = [ok, gone, forbidden].map(reader);
    await t.store.delete(expiring.id);
    await t.database.db
      .updateTable('users')
      .set({ role: 'user' })
      .where('id', '=', demoted.id)
      .execute();

    await sleep(350);
    expect(text[0]().match(/: keep-alive/g)?.length).toBeGreaterThanOrEqual(2);
    expect(text[1]()).toContain('event: bye\ndata: {"reason":"session_ended"}');
    expect(text[2]()).toContain('event: bye\ndata: {"reason":"forbidden"}');
    expect(text[0]()).not.toContain('event: bye');
    expect(h.size).toBe(1);
    h.closeAll();
  });

  it('should ask the store again when a console opens after all had closed during an outage', async () => {
    let down = false;
    const store = {
      ...t.app.warden.store,
      get: (id: string) => t.app.warden.store.get(id),
      counts: (now: number) => t.app.warden.store.counts(now),
      ping: async () => {
        if (down) throw new Error('store away');
        return t.app.warden.store.ping();
      },
    };
    const h = new LiveHub({
      bus: createLocalLiveBus(),
      store,
      users: t.app.warden.users.repo,
      clock: Date.now,
      log: t.app.log,
      storeCheckMs: 20,
    });
    down = true;
    const first = h.open({ sessionId: ID, userId: 1 });
    const during = reader(first);
    await sleep(120);
    expect(during()).toContain('event: store\ndata: {"up":false}');
    first.destroy();
    await sleep(10);
    // The store comes back while no console is open; the next one is told so at once.
    down = false;
    const next = reader(h.open({ sessionId: ID, userId: 1 }));
    await sleep(10);
    expect(next()).toContain('event: store\ndata: {"up":true}');
    expect(next()).not.toContain('"up":false');
    h.closeAll();
  });

  it('should listen to the bus only while a stream is open', async () => {
    const inner = createLocalLiveBus();
    let listening = 0;
    const counted: LiveBus = {
      ...inner,
      subscribe(listener) {
        listening++;
        const stop = inner.subscribe(listener);
        return () => {
          listening--;
          stop();
        };
      },
    };
    const h = hub(counted);
    expect(listening).toBe(0);
    const a = h.open({ sessionId: ID, userId: 1 });
    const b = h.open({ sessionId: ID, userId: 1 });
    expect(listening).toBe(1);
    a.destroy();
    b.destroy();
    await sleep(10);
    expect(listening).toBe(0);
    expect(h.size).toBe(0);
  });

  /**
   * A hub whose store takes 40 ms to count (standing in for SQLite's exact count over a large
   * table), telling `counted` when each count starts.
   */
  function slowCountingHub(counted: () => void) {
    const slow = {
      ...t.app.warden.store,
      get: (id: string) => t.app.warden.store.get(id),
      ping: () => t.app.warden.store.ping(),
      counts: async (now: number) => {
        counted();
        await sleep(40);
        return t.app.warden.store.counts(now);
      },
    };
    const bus = createLocalLiveBus();
    const h = new LiveHub({
      bus,
      store: slow,
      users: t.app.warden.users.repo,
      clock: Date.now,
      log: t.app.log,
      heartbeatMs: 60_000,
    });
    return { bus, h };
  }

  it('should count less often when counting is slow, keeping its share of the time small', async () => {
    let counts = 0;
    const { bus, h } = slowCountingHub(() => {
      counts++;
    });
    const out = h.open({ sessionId: ID, userId: 1 });
    const text = reader(out);
    // A change every 50 ms for 2 s: at COUNT_DELAY_MS alone that is about 10 counts.
    for (let i = 0; i < 40; i++) {
      bus.publish({ type: 'cleaned_up', count: 1, at: i });
      await sleep(50);
    }
    expect(text()).toContain('event: count');
    expect(counts).toBeGreaterThanOrEqual(1);
    // 40 ms a count at 5% of the time: one count per 800 ms at most.
    expect(counts).toBeLessThanOrEqual(3);
    h.closeAll();
  });

  it("should wait by a slow count's cost before the next, even for changes made during it", async () => {
    // Changes every 10 ms, so several arrive while a 40 ms count runs.
    const starts: number[] = [];
    const { bus, h } = slowCountingHub(() => starts.push(performance.now()));
    h.open({ sessionId: ID, userId: 1 });
    // Until a third count starts: on a loaded machine a count takes longer than its 40 ms, and
    // the wait after it grows with it, so no fixed window holds two.
    const until = performance.now() + 10_000;
    for (let i = 0; starts.length < 3 && performance.now() < until; i++) {
      bus.publish({ type: 'cleaned_up', count: 1, at: i });
      await sleep(10);
    }
    expect(starts.length).toBeGreaterThanOrEqual(2);
    // 40 ms a count at 5% of the time: 800 ms from one count's start to the next at least.
    for (let i = 1; i < starts.length; i++) {
      expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(800);
    }
    h.closeAll();
  });

  it('should drop a console that stops reading instead of buffering without bound', async () => {
    const bus = createLocalLiveBus();
    const h = hub(bus);
    const out = h.open({ sessionId: ID, userId: 1 });
    const ids = Array.from({ length: 50 }, unknownId);
    for (let i = 0; i < 200 && !out.destroyed; i++) {
      bus.publish({ type: 'revoked', sessionIds: ids, reason: 'revoked', at: i });
    }
    expect(out.destroyed).toBe(true);
    await sleep(10);
    expect(h.size).toBe(0);
  });
});
