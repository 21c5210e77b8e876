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
});
