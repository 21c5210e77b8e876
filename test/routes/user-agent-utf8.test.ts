/**
 * Over real HTTP (inject hands headers over as strings, not bytes): a browser's user agent in
 * UTF-8 is stored as it was sent, not as Node's latin1 reading of its bytes.
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { makeApp, PASSWORD } from '../support/app.js';

describe('a sign-in over HTTP with a UTF-8 user agent', () => {
  it('should store the user agent as the browser sent it', async () => {
    const t = await makeApp('sqlite');
    try {
      await t.createUser('utf8@example.test');
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = t.app.server.address() as AddressInfo;
      const base = `http://127.0.0.1:${port}`;
      const sent = 'Mozilla/5.0 (X11; Linux x86_64) café ✓ 😀 Firefox/133.0';
      // The UTF-8 bytes on the wire, as a browser sends them (a header string goes out as latin1).
      const userAgent = Buffer.from(sent, 'utf8').toString('latin1');

      const csrf = await fetch(`${base}/api/auth/csrf`, { headers: { 'user-agent': userAgent } });
      const { token } = (await csrf.json()) as { token: string };
      const cookie = csrf.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      const login = await fetch(`${base}/api/auth/login`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': userAgent,
          'x-csrf-token': token,
          origin: base,
          cookie,
        },
        body: JSON.stringify({ email: 'utf8@example.test', password: PASSWORD }),
      });
      expect(login.status).toBe(200);
      const { session } = (await login.json()) as { session: { id: string } };
      expect((await t.store.get(session.id))?.userAgent).toBe(sent);
    } finally {
      await t.close();
    }
  });
});
