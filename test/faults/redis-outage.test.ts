/**
 * Redis killed, then paused (SIGSTOP), under a steady load of whoami, console and sign-in
 * requests, on a Warden built as `warden serve` builds it with a redis-server of its own:
 * while Redis is away every answer comes within a second, no signed-in route answers 200 and
 * none answers 500; after it returns Warden recovers by itself within 3 s and the sessions
 * from before the outage are valid again. C07 (no unbounded queue) is the pause.
 */

import v8 from 'node:v8';
import vm from 'node:vm';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_STALE_MS } from '../../src/sessions/tracked-reads.js';
import { type Client, PASSWORD } from '../support/app.js';
import { type OwnRedis, redisServerAvailable, startOwnRedis } from '../support/redis-server.js';
import { servicesRequired } from '../support/services.js';
import { runLoad, type Sample, sleep, startWarden, type Warden, waitFor } from './harness.js';

const OUTAGE_MS = 5_000;
const SIGNER = 'signer@example.test';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

describe.skipIf(!redisServerAvailable() && !servicesRequired())('Redis outage under load', () => {
  let own: OwnRedis;
  let w: Warden;
  let admin: Client;
  let signerId: number;
  const people: Client[] = [];

  beforeAll(async () => {
    own = await startOwnRedis({ persist: true });
    w = await startWarden({ env: { REDIS_URL: own.url } });
    await w.createUser('root@example.test', 'superuser');
    signerId = await w.createUser(SIGNER);
    admin = w.client();
    await admin.login('root@example.test');
    for (let i = 0; i < 3; i++) {
      await w.createUser(`person${i}@example.test`);
      const c = w.client();
      await c.login(`person${i}@example.test`);
      people.push(c);
    }
  }, 30_000);

  afterAll(async () => {
    own?.resume();
    await w?.close();
    await own?.stop();
  });

  function startLoad() {
    return runLoad([
      ...people.map((c): [string, () => ReturnType<Client['get']>] => [
        'whoami',
        () => c.get('/api/auth/session'),
      ]),
      ['console', () => admin.get('/admin/sessions', 'json')],
      ['console page', () => admin.get('/admin/sessions', 'html')],
      [
        'sign-in',
        () => w.client().postJson('/api/auth/login', { email: SIGNER, password: PASSWORD }),
      ],
    ]);
  }

  async function everyoneBack() {
    for (const c of [...people, admin]) {
      const res = await c.get('/api/auth/session');
      if (res.statusCode !== 200) return false;
    }
    return true;
  }

  /** Sign-ins answered 200 must be exactly the signer's stored sessions: 503 left none. */
  async function expectOnlyAnsweredSignIns(samples: Sample[], before: number) {
    const answered = samples.filter((s) => s.kind === 'sign-in' && s.status === 200).length;
    await waitFor(
      async () => (await w.runtime.store.listByUser(signerId)).length === before + answered,
      3_000,
      'no session from a sign-in answered 503',
    );
    await sleep(300);
    expect((await w.runtime.store.listByUser(signerId)).length).toBe(before + answered);
  }

  /**
   * `knownUntil`: until then a validation may still be answered from memory (tracked reads),
   * which stop serving once the connection has been silent for DEFAULT_STALE_MS.
   */
  function expectBoundedAndClosed(window: Sample[], knownUntil = Number.NEGATIVE_INFINITY) {
    expect(window.length).toBeGreaterThan(100);
    for (const s of window) {
      expect(s.latencyMs, `${s.kind} at ${Math.round(s.at)} ms`).toBeLessThan(1_000);
      expect(s.status, `${s.kind} at ${Math.round(s.at)} ms`).not.toBe(500);
      if (s.kind === 'whoami' && s.status === 200 && s.at < knownUntil) continue;
      // Pages and JSON alike: 503 with the store's code (the page carries it as data-error-code).
      expect({ status: s.status, code: s.code }, s.kind).toEqual({
        status: 503,
        code: 'WARDEN_STORE_UNAVAILABLE',
      });
    }
  }

  it('should answer fast and let nobody in while Redis is killed, and recover within 3 s with sessions kept', async () => {
    const signerBefore = (await w.runtime.store.listByUser(signerId)).length;
    // A token taken while the session could be read, as an open page holds one.
    const signOutToken = await people[0]!.csrf();
    const load = startLoad();
    await sleep(300);

    const downAt = load.now();
    await own.kill();
    await sleep(OUTAGE_MS / 2);
    const ready = await w.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().sessionStore).toMatchObject({ ok: false, circuit: { state: 'open' } });
    expect((await w.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    // The 503 page cannot know who asks: it says so instead of offering a sign-in.
    const page = await admin.get('/admin/sessions', 'html');
    expect(page.statusCode).toBe(503);
    expect(page.body).toContain('id="nav-unknown"');
    expect(page.body).not.toContain('href="/login"');
    // Nor a way back to the start page, which waits for the same store.
    expect(page.body).toContain('data-reload-when-ready');
    expect(page.body).not.toContain('Back to the start page');
    // Signing out cannot be checked either (its CSRF token is bound to the session): a 503 to
    // retry, not a 403 that reads as a forged request.
    const out = await people[0]!.postJson('/api/auth/logout', {}, { csrf: signOutToken });
    expect({ status: out.statusCode, code: out.json().error?.code }).toEqual({
      status: 503,
      code: 'WARDEN_STORE_UNAVAILABLE',
    });
    // The sign-in form answers on itself, keeping the email, with when to try again.
    const form = await w.client().postForm('/login', { email: SIGNER, password: PASSWORD });
    expect(form.statusCode).toBe(503);
    expect(form.headers['retry-after']).toBe('5');
    expect(form.body).toContain('Try again in a few seconds.');
    expect(form.body).toContain(`value="${SIGNER}"`);
    await sleep(OUTAGE_MS / 2);

    const upAt = load.now();
    await own.start();
    const recoveredMs = await waitFor(everyoneBack, 3_000, 'sessions valid again');
    const backAt = load.now();
    await sleep(300);
    const samples = await load.stop();

    expectBoundedAndClosed(samples.filter((s) => s.at > downAt && s.at + s.latencyMs < upAt));
    expect(recoveredMs).toBeLessThan(3_000);
    const after = samples.filter((s) => s.at > backAt && s.kind === 'whoami');
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((s) => s.status !== 200)).toEqual([]);
    expect((await w.app.inject({ url: '/readyz' })).json()).toMatchObject({
      status: 'ready',
      sessionStore: { ok: true, circuit: { state: 'closed' } },
    });
    // One line when Redis went, one when it came back: not one per failed request.
    expect(w.logs.filter((l) => l.event === 'redis_down')).toHaveLength(1);
    expect(w.logs.filter((l) => l.event === 'redis_up')).toHaveLength(1);
    // It kept its data (an append-only file): no warning that sessions were lost.
    expect(w.logs.filter((l) => l.event === 'redis_data_lost')).toEqual([]);
    await expectOnlyAnsweredSignIns(samples, signerBefore);
  }, 30_000);

  it('C07: with Redis paused, timeouts answer within 1 s, commands sent to Redis and memory stay bounded, and no 503 sign-in leaves a session', async () => {
    const signerBefore = (await w.runtime.store.listByUser(signerId)).length;
    // Every command clients send, as MONITOR reports it (after the pause, what waited for it).
    const watcher = createClient({ url: own.url });
    watcher.on('error', () => {});
    await watcher.connect();
    const ran: string[] = [];
    // Commands a script runs show as `[0 lua]`: only what clients sent counts here.
    await watcher.monitor((line: string) => {
      if (!/\[\d+ lua\]/.test(line)) ran.push(line);
    });
    await sleep(50);
    gc();
    const memoryBefore = process.memoryUsage();
    // The load starts once Redis is paused, so that all Redis runs on resume waited for it.
    ran.length = 0;
    own.pause();
    const load = startLoad();
    await sleep(OUTAGE_MS - 1_000);
    gc();
    const memoryPaused = process.memoryUsage();
    // And it stops before Redis resumes.
    const samples = await load.stop();
    const resumedAt = performance.now();
    own.resume();
    await sleep(300);
    const queued = ran.length;
    watcher.destroy();
    const recoveredMs = await waitFor(everyoneBack, 3_000, 'sessions valid again');

    const window = samples;
    // The load began as Redis paused: a heartbeat's silence later nothing is served from memory.
    expectBoundedAndClosed(window, DEFAULT_STALE_MS + 200);
    expect(performance.now() - resumedAt - 300).toBeLessThan(3_000);
    expect(recoveredMs).toBeLessThan(3_000);
    // Every request during the pause needed Redis; only the calls before the breaker opened and
    // one trial per pause were written to the frozen socket, not one or more per request.
    expect(queued, commandCounts(ran)).toBeLessThan(60);
    expect(window.length).toBeGreaterThan(10 * queued);
    expect(memoryPaused.heapUsed - memoryBefore.heapUsed).toBeLessThan(30 * 2 ** 20);
    expect(memoryPaused.rss - memoryBefore.rss).toBeLessThan(80 * 2 ** 20);
    // Creates written to the frozen socket ran on SIGCONT; each came too late and wrote nothing.
    await expectOnlyAnsweredSignIns(samples, signerBefore);
  }, 30_000);

  it('C07: sign-ins whose create sat in the socket of a paused Redis leave no session once it resumes', async () => {
    expect(w.runtime.store.kind).toBe('redis');
    // Different people: one account's password checks take turns, which is not the point here.
    const emails = Array.from({ length: 8 }, (_, i) => `late${i}@example.test`);
    const ids = await Promise.all(emails.map((e) => w.createUser(e)));
    const clients = emails.map(() => w.client());
    const tokens = await Promise.all(clients.map((c) => c.csrf()));

    own.pause();
    const started = performance.now();
    const answers = await Promise.all(
      clients.map((c, i) =>
        c.postJson(
          '/api/auth/login',
          { email: emails[i], password: PASSWORD },
          { csrf: tokens[i] },
        ),
      ),
    );
    const tookMs = performance.now() - started;
    own.resume();

    expect(answers.map((a) => a.statusCode)).toEqual(Array(8).fill(503));
    // Password checks of one IP take turns four at a time: two rounds of timeouts at most.
    expect(tookMs).toBeLessThan(2_000);
    // The creates run now, late: each is refused, or deleted if it landed.
    await waitFor(
      async () => (await admin.get('/api/auth/session')).statusCode === 200,
      3_000,
      'back',
    );
    await sleep(1_500);
    for (const id of ids) expect(await w.runtime.store.listByUser(id)).toEqual([]);
  }, 20_000);
});

/** How many of each command MONITOR lines show, for a failure message. */
function commandCounts(lines: string[]): string {
  const counts = new Map<string, number>();
  for (const line of lines) {
    const command = /\] "([A-Za-z]+)"/.exec(line)?.[1]?.toUpperCase() ?? line.slice(0, 30);
    counts.set(command, (counts.get(command) ?? 0) + 1);
  }
  return JSON.stringify([...counts]);
}
