/**
 * `GET /api/auth/session` over real HTTP goes through the fast path (http/session-fast-path.ts);
 * `inject()` goes straight to the Fastify route. The two must not be told apart: same body,
 * same headers, same log line, and every other outcome (revoked, disabled, sliding, store down)
 * answered as the route answers it, with the store asked once.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { serve } from '../support/browser.js';

const kinds = await storeKindsToRun();

/** The store, counting reads, and failing them on demand as a store that is away would. */
function watched(inner: SessionStore) {
  const state = { gets: 0, failing: false };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'get') {
        const value = Reflect.get(target, prop, receiver);
        // The stores keep private fields: their methods must run on the store itself.
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (id: string) => {
        state.gets += 1;
        if (state.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:1');
        return target.get(id);
      };
    },
  });
  return { state, store };
}

const HEADERS = [
  'content-type',
  'content-security-policy',
  'cross-origin-resource-policy',
  'x-content-type-options',
  'x-frame-options',
  'cache-control',
];

describe.each(kinds)('the session fast path ($kind)', ({ kind, skip }) => {
  let t: TestApp;
  let base: string;
  // The app's clock runs with the real one, shifted forward by the tests that need time to pass.
  let shift = 0;
  let watch: ReturnType<typeof watched>;
  const lines: Array<Record<string, unknown>> = [];
  let admin: Client;

  const overHttp = (cookie: string) => fetch(`${base}/api/auth/session`, { headers: { cookie } });
  const signedIn = async (email: string) => {
    const user = await t.createUser(email);
    const client = new Client(t.app);
    await client.login(email);
    return { user, client, cookie: client.cookieHeader() };
  };
  const requestLines = () =>
    lines.filter((l) => l.event === 'request' && l.route === '/api/auth/session');

  beforeAll(async () => {
    if (skip) return;
    const logStream = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    t = await makeApp(kind, {
      clock: () => Date.now() + shift,
      logStream,
      wrapStore: (inner) => {
        watch = watched(inner);
        return watch.store;
      },
    });
    base = await serve(t);
    await t.createUser('root@example.com', 'superuser');
    admin = new Client(t.app);
    await admin.login('root@example.com');
  });
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(() => {
    lines.length = 0;
    if (watch) watch.state.failing = false;
  });

  it.skipIf(skip)('should answer as the route does, asking the store once', async () => {
    const { user, cookie } = await signedIn('ada@example.com');
    watch.state.gets = 0;
    const fast = await overHttp(cookie);
    expect(watch.state.gets).toBe(1);
    const route = await t.app.inject({ url: '/api/auth/session', headers: { cookie } });

    expect(fast.status).toBe(200);
    expect(route.statusCode).toBe(200);
    const body = await fast.json();
    expect(body).toEqual(route.json());
    expect(body).toMatchObject({ id: user.id, email: 'ada@example.com', role: 'user' });
    for (const name of HEADERS) {
      expect(fast.headers.get(name), name).toBe(String(route.headers[name]));
    }
    expect(fast.headers.get('set-cookie')).toBeNull();

    // One line for each, with the same fields.
    const [fastLine, routeLine] = requestLines();
    expect(requestLines()).toHaveLength(2);
    const fields = (l: Record<string, unknown>) => Object.keys(l).sort();
    expect(fields(fastLine)).toEqual(fields(routeLine));
    expect(fastLine).toMatchObject({
      method: 'GET',
      url: '/api/auth/session',
      status: 200,
      userId: user.id,
      ip: '127.0.0.1',
    });
  });

  it.skipIf(skip)(
    'should refuse a revoked session and a disabled user on the next request',
    async () => {
      const revoked = await signedIn('bob@example.com');
      expect((await overHttp(revoked.cookie)).status).toBe(200);
      const logout = await revoked.client.postJson('/api/auth/logout');
      expect(logout.statusCode).toBe(200);

      watch.state.gets = 0;
      const gone = await overHttp(revoked.cookie);
      expect(watch.state.gets).toBe(1);
      expect(gone.status).toBe(401);
      expect((await gone.json()).error.code).toBe('WARDEN_AUTH_REQUIRED');
      expect(gone.headers.get('set-cookie')).toMatch(/^warden_session=;.*Max-Age=0/);

      const disabled = await signedIn('cyd@example.com');
      expect((await overHttp(disabled.cookie)).status).toBe(200);
      const res = await admin.postJson(`/admin/users/${disabled.user.id}/disable`);
      expect(res.statusCode).toBe(200);
      expect((await overHttp(disabled.cookie)).status).toBe(401);
    },
  );

  it.skipIf(skip)('should re-issue the cookie when the idle deadline slides', async () => {
    const { cookie } = await signedIn('dee@example.com');
    shift += 61_000;
    const before = Date.now() + shift;
    watch.state.gets = 0;
    const res = await overHttp(cookie);
    expect(watch.state.gets).toBe(1);
    expect(res.status).toBe(200);
    expect((await res.json()).session.lastSeenAt).toBeGreaterThanOrEqual(before);
    expect(res.headers.get('set-cookie')).toMatch(/^warden_session=[\w-]+;.*Max-Age=\d+/);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it.skipIf(skip)(
    'should answer 503 when the store cannot answer, without asking twice',
    async () => {
      const { cookie } = await signedIn('eve@example.com');
      watch.state.failing = true;
      watch.state.gets = 0;
      const res = await overHttp(cookie);
      expect(watch.state.gets).toBe(1);
      expect(res.status).toBe(503);
      expect((await res.json()).error.code).toBe('WARDEN_STORE_UNAVAILABLE');
      watch.state.failing = false;
      expect((await overHttp(cookie)).status).toBe(200);
    },
  );

  it.skipIf(skip)(
    'should give each request its own answer, in order on a connection, when many arrive at once',
    async () => {
      const people = await Promise.all(
        Array.from({ length: 12 }, (_, i) => signedIn(`many${i}@example.com`)),
      );
      // Known in memory from here on: the answers below are the batched ones.
      for (const p of people) expect((await overHttp(p.cookie)).status).toBe(200);

      const answers = await Promise.all(people.map((p) => overHttp(p.cookie)));
      const emails = await Promise.all(answers.map(async (a) => (await a.json()).email));
      expect(emails).toEqual(people.map((p) => p.user.email));

      // Pipelined on one socket, a request only the route answers between two from memory.
      const get = (cookie: string, last = false) =>
        `GET /api/auth/session HTTP/1.1\r\nhost: x\r\ncookie: ${cookie}\r\n${last ? 'connection: close\r\n' : ''}\r\n`;
      const raw = await pipelined(base, [
        get(people[0].cookie),
        get('warden_session=not-a-token'),
        get(people[1].cookie, true),
      ]);
      const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
      expect(statuses).toEqual(['200', '401', '200']);
      const bodies = [...raw.matchAll(/"email":"([^"]+)"/g)].map((m) => m[1]);
      expect(bodies).toEqual([people[0].user.email, people[1].user.email]);
    },
  );

  it.skipIf(skip)(
    'should leave other methods, paths and malformed cookies to the routes',
    async () => {
      const { cookie } = await signedIn('fay@example.com');
      const head = await fetch(`${base}/api/auth/session`, { method: 'HEAD', headers: { cookie } });
      expect(head.status).toBe(200);
      const query = await fetch(`${base}/api/auth/session?x=1`, { headers: { cookie } });
      expect(query.status).toBe(200);
      const bad = await overHttp('warden_session=not-a-token');
      expect(bad.status).toBe(401);
      expect((await overHttp('')).status).toBe(401);
    },
  );
});

describe('the session fast path behind a trusted proxy', () => {
  let t: TestApp;
  let base: string;

  beforeAll(async () => {
    t = await makeApp('sqlite', { env: { TRUST_PROXY: '127.0.0.1' } });
    base = await serve(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('should send HSTS when the proxy says HTTPS, as the route does, and not otherwise', async () => {
    await t.createUser('hal@example.com');
    const client = new Client(t.app);
    await client.login('hal@example.com');
    const cookie = client.cookieHeader();
    const ask = (proto: string) =>
      fetch(`${base}/api/auth/session`, { headers: { cookie, 'x-forwarded-proto': proto } });

    const fast = await ask('http, https');
    const route = await t.app.inject({
      url: '/api/auth/session',
      headers: { cookie, 'x-forwarded-proto': 'http, https' },
    });
    expect(fast.status).toBe(200);
    expect(route.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
    expect(fast.headers.get('strict-transport-security')).toBe(
      route.headers['strict-transport-security'],
    );
    expect((await ask('http')).headers.get('strict-transport-security')).toBeNull();
  });
});

/**
 * Writes the requests in one go on one connection and reads until the server closes it (the last
 * request asks it to). Not a half-close: Node drops requests still queued when the client ends.
 */
function pipelined(base: string, requests: string[]): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect(Number(port), hostname, () => socket.write(requests.join('')));
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      text += chunk;
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}
