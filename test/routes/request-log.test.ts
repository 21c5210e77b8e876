import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { newToken, sessionIdOf } from '../../src/sessions/tokens.js';
import { makeApp, PASSWORD, type TestApp } from '../support/app.js';
import { logCapture } from '../support/log-capture.js';
import { signedIn } from './helpers.js';
import { listen } from './live-sse.js';

describe('request log', () => {
  let t: TestApp | undefined;
  afterEach(async () => t?.close());

  it('should write one line per request with method, route, status, user and duration', async () => {
    const { stream, lines } = logCapture();
    t = await makeApp('sqlite', { logStream: stream });
    const user = await t.createUser('log@example.test');
    const c = t.client();
    await c.login('log@example.test');
    lines.length = 0;

    await c.get('/api/auth/session');
    await c.get('/static/warden.css');
    const entries = lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'request');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      method: 'GET',
      route: '/api/auth/session',
      status: 200,
      userId: user.id,
      ip: '127.0.0.1',
    });
    expect(typeof entries[0].durationMs).toBe('number');

    // A file that is not there is logged; one served is not.
    lines.length = 0;
    expect((await c.get('/static/nothing-here.css')).statusCode).toBe(404);
    const missing = lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'request');
    expect(missing).toEqual([
      expect.objectContaining({ url: '/static/nothing-here.css', status: 404, ip: '127.0.0.1' }),
    ]);

    // A refused request has its request line and one saying why; every line names its event.
    lines.length = 0;
    expect((await c.get('/admin/sessions?status=nonsense')).statusCode).toBe(403);
    expect((await t.client().get('/api/auth/session?x=1')).statusCode).toBeGreaterThanOrEqual(400);
    // A path that does not decode is refused before any route.
    expect((await t.client().get('/%ZZ')).statusCode).toBe(400);
    const all = lines.map((l) => JSON.parse(l));
    expect(all.filter((l) => typeof l.event !== 'string')).toEqual([]);
    expect(all.filter((l) => l.event === 'request_refused').length).toBeGreaterThan(0);
  });

  it('should log a failed sign-in by its email, and never text typed there that is no address', async () => {
    const { stream, lines } = logCapture();
    t = await makeApp('sqlite', { logStream: stream });
    const c = t.client();
    // The password typed into the email box, as happens.
    await c.postJson('/api/auth/login', { email: 'MyPassw0rdTypedInEmail', password: 'x' });
    await c.postJson('/api/auth/login', { email: 'nobody@example.test', password: 'x' });
    const failed = lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'sign_in_failed');
    expect(failed.map((l) => l.email)).toEqual(['(not an email address)', 'nobody@example.test']);
    expect(lines.join('\n')).not.toContain('MyPassw0rdTypedInEmail');
  });

  it('should log a 503 (the store away, answered with Retry-After) as a warning, not an error', async () => {
    const { stream, lines } = logCapture();
    const away = { on: false };
    t = await makeApp('sqlite', {
      logStream: stream,
      wrapStore: (inner) => awayWhile(inner, away, ['ping', 'get']),
    });
    await t.createUser('away@example.test');
    const user = t.client();
    await user.login('away@example.test');
    away.on = true;
    lines.length = 0;
    // A load balancer polls this all through an outage: a line per poll must not be an error.
    const res = await t.client().get('/readyz');
    expect(res.statusCode).toBe(503);
    const [entry] = lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'request');
    expect(entry).toMatchObject({ status: 503, level: 40 });

    // Nor a request the store could not answer, nor its explanation: a warning naming the code
    // and the cause, without a stack.
    lines.length = 0;
    expect((await user.get('/api/auth/session')).statusCode).toBe(503);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.filter((l) => l.level >= 50)).toEqual([]);
    const [failed] = parsed.filter((l) => l.event === 'request_failed');
    expect(failed).toMatchObject({ level: 40, code: 'WARDEN_STORE_UNAVAILABLE' });
    expect(typeof failed.reason).toBe('string');
    expect(failed.err).toBeUndefined();
  });

  it('should say why for an unknown address, a wrong method and a sign-in form the store could not serve', async () => {
    const { stream, lines } = logCapture();
    const away = { on: false };
    t = await makeApp('sqlite', {
      logStream: stream,
      wrapStore: (inner) => awayWhile(inner, away, ['create']),
    });
    await t.createUser('form@example.test');
    const reasons = () =>
      lines
        .map((l) => JSON.parse(l))
        .filter((l) => l.event === 'request_refused' || l.event === 'request_failed')
        .map((l) => [l.event, l.code]);

    lines.length = 0;
    expect((await t.client().get('/no/such/page')).statusCode).toBe(404);
    expect((await t.client().request({ method: 'DELETE', url: '/login' })).statusCode).toBe(405);
    expect(reasons()).toEqual([
      ['request_refused', 'WARDEN_NOT_FOUND'],
      ['request_refused', 'WARDEN_METHOD_NOT_ALLOWED'],
    ]);

    // The form comes back with a 503 to send again, and the log says which store was away.
    away.on = true;
    lines.length = 0;
    const res = await t
      .client()
      .postForm('/login', { email: 'form@example.test', password: PASSWORD });
    expect(res.statusCode).toBe(503);
    expect(reasons()).toEqual([['request_failed', 'WARDEN_STORE_UNAVAILABLE']]);
  });

  it('should write both lines for bytes that are not HTTP', async () => {
    const { stream, lines } = logCapture();
    t = await makeApp('sqlite', { logStream: stream });
    const base = new URL(await listen(t.app));
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(base.port), base.hostname, () => {
        socket.write('HELLO THERE\r\n\r\n');
      });
      let text = '';
      socket.on('data', (d) => {
        text += d;
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const logged = lines.map((l) => JSON.parse(l));
    expect(logged.filter((l) => l.event === 'request')).toEqual([
      expect.objectContaining({ status: 400, ip: '127.0.0.1' }),
    ]);
    expect(logged.filter((l) => l.event === 'request_refused')).toEqual([
      expect.objectContaining({
        code: 'WARDEN_VALIDATION',
        reason: expect.stringMatching(/^HPE_/),
      }),
    ]);
  });

  it('should write the request line of a stream its client left, marking a download cut', async () => {
    const { stream, lines } = logCapture();
    t = await makeApp('sqlite', { logStream: stream });
    const root = await t.createUser('root@example.test', 'superuser');
    const { client } = await signedIn(t, 'root@example.test');
    // Enough rows that the export is still being written when its reader leaves.
    const now = Date.now();
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      id: sessionIdOf(newToken()),
      userId: root.id,
      createdAt: now - 60_000 - i,
      lastSeenAt: now - 60_000,
      idleExpiresAt: now + 3_600_000,
      absoluteExpiresAt: now + 7_200_000,
      ip: '192.0.2.7',
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) log test',
    }));
    for (let i = 0; i < rows.length; i += 500) {
      await Promise.all(rows.slice(i, i + 500).map((r) => t!.store.create(r)));
    }
    const base = await listen(t.app);
    const parsed = () => lines.map((l) => JSON.parse(l));
    const lineFor = async (route: string) => {
      for (let i = 0; i < 100; i++) {
        const found = parsed().find((l) => l.event === 'request' && l.route === route);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no request line for ${route}: ${lines.slice(-5).join('\n')}`);
    };

    // Reads the first bytes of an answer, then leaves, closing its own socket.
    const leaveAfterFirstBytes = (path: string) =>
      new Promise<void>((resolve, reject) => {
        const req = http.get(
          `${base}${path}`,
          { headers: { cookie: client.cookieHeader() }, agent: false },
          (res) => {
            if (res.statusCode !== 200) reject(new Error(`${path}: ${res.statusCode}`));
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', (err) => (req.destroyed ? resolve() : reject(err)));
      });

    // A console closes (its first frame is the active count): its stream's request line.
    await leaveAfterFirstBytes('/admin/events');
    await lineFor('/admin/events');
    // A download cancelled after its first rows.
    await leaveAfterFirstBytes('/admin/sessions/export.csv');
    await lineFor('/admin/sessions/export.csv');

    expect(parsed().filter((l) => l.msg === 'stream closed prematurely')).toEqual([]);
    const requests = parsed().filter((l) => l.event === 'request');
    const events = requests.filter((l) => l.route === '/admin/events');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: 200, userId: root.id, ip: '127.0.0.1', level: 30 });
    expect(events[0].cut).toBeUndefined();
    const download = requests.filter((l) => l.route === '/admin/sessions/export.csv');
    expect(download).toHaveLength(1);
    expect(download[0]).toMatchObject({ status: 200, userId: root.id, cut: true });
  });
});

/** The store with `calls` failing as an unreachable Redis would, while `away.on`. */
function awayWhile(inner: SessionStore, away: { on: boolean }, calls: string[]): SessionStore {
  return new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof prop === 'string' && calls.includes(prop) && away.on) {
        return async () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:1');
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
