import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { makeApp, type TestApp } from '../support/app.js';

describe('request log', () => {
  let t: TestApp | undefined;
  afterEach(async () => t?.close());

  it('should write one line per request with method, route, status, user and duration', async () => {
    const lines: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)));
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
  });

  it('should log a 503 (the store away, answered with Retry-After) as a warning, not an error', async () => {
    const lines: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)));
    const away = { on: false };
    t = await makeApp('sqlite', {
      logStream: stream,
      wrapStore: (inner) =>
        new Proxy(inner, {
          get(target, prop) {
            const value = Reflect.get(target, prop, target);
            if ((prop === 'ping' || prop === 'get') && away.on) {
              return async () => {
                throw new Error('connect ECONNREFUSED 127.0.0.1:1');
              };
            }
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }),
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
    const [failed] = parsed.filter((l) => l.msg === 'request failed');
    expect(failed).toMatchObject({ level: 40, code: 'WARDEN_STORE_UNAVAILABLE' });
    expect(typeof failed.reason).toBe('string');
    expect(failed.err).toBeUndefined();
  });
});
