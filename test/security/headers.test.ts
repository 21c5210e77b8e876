/**
 * Headers on every GET route of the route table (and on redirects and error pages): a CSP
 * without inline script or style and with frame-ancestors 'none', nosniff, a referrer policy,
 * X-Frame-Options DENY; HSTS only when the request came over HTTPS (through a trusted proxy).
 * And every HTML page keeps to that CSP by construction: no inline script, style block, style
 * attribute or event-handler attribute.
 */
import http from 'node:http';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeApp, type TestApp } from '../support/app.js';
import { serve } from '../support/browser.js';
import { isStream, makeWorld, routesOf, urlFor, type World } from './support.js';

type Headers = LightMyRequestResponse['headers'] | http.IncomingHttpHeaders;

function cspOf(headers: Headers) {
  const csp = String(headers['content-security-policy'] ?? '');
  const directives = new Map(
    csp.split(';').map((d) => {
      const [name, ...values] = d.trim().split(/\s+/);
      return [name, values.join(' ')] as const;
    }),
  );
  return { csp, directives };
}

/** A JSON API answer: nothing may load or frame it, it is never sniffed, never cached. */
function expectApiHeaders(headers: Headers, what: string) {
  const { csp, directives } = cspOf(headers);
  expect(directives.get('default-src'), `${what}: ${csp}`).toBe("'none'");
  expect(directives.get('frame-ancestors'), what).toBe("'none'");
  expect(headers['x-content-type-options'], what).toBe('nosniff');
  expect(headers['x-frame-options'], what).toBe('DENY');
  expect(headers['cache-control'], what).toBe('no-store');
  expect(headers['strict-transport-security'], what).toBeUndefined();
}

function expectSecurityHeaders(headers: Headers, what: string) {
  if (what.startsWith('GET /api/')) return expectApiHeaders(headers, what);
  const { csp, directives } = cspOf(headers);
  expect(directives.get('default-src'), `${what}: ${csp}`).toBe("'self'");
  expect(directives.get('script-src'), what).toBe("'self'");
  expect(directives.get('style-src'), what).toBe("'self'");
  expect(directives.get('frame-ancestors'), what).toBe("'none'");
  expect(directives.get('object-src'), what).toBe("'none'");
  expect(directives.get('base-uri'), what).toBe("'none'");
  expect(csp, what).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  expect(headers['x-content-type-options'], what).toBe('nosniff');
  expect(headers['referrer-policy'], what).toBe('same-origin');
  expect(headers['x-frame-options'], what).toBe('DENY');
  expect(headers['strict-transport-security'], what).toBeUndefined();
  // Every page depends on who asks: a shared cache or the back button must not keep it.
  // Static files are the same for everybody and may be cached.
  // (The live updates stream says no-cache, as event streams do.)
  if (!what.includes(' /static/'))
    expect(headers['cache-control'], what).toMatch(/^no-(store|cache)/);
}

/** Markup that the CSP would block: it must not be on any page in the first place. */
function expectNoInlineCode(body: string, what: string) {
  expect(body, what).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
  expect(body, what).not.toMatch(/<style[\s>]/i);
  expect(body, what).not.toMatch(/\sstyle\s*=/i);
  expect(body, what).not.toMatch(/\son[a-z]+\s*=/i);
  expect(body, what).not.toMatch(/(?:href|src|action)\s*=\s*"\s*javascript:/i);
}

describe('security headers', () => {
  let t: TestApp;
  let w: World;

  beforeAll(async () => {
    t = await makeApp('sqlite');
    w = await makeWorld(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('should send them on every GET route, signed in or not, and keep every page free of inline code', async () => {
    const base = await serve(t);
    let pages = 0;
    for (const r of routesOf(t).filter((r) => r.method === 'GET')) {
      const url = urlFor(w, r);
      if (isStream(r)) {
        const headers = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
          const req = http.get(
            `${base}${url}`,
            { agent: false, headers: { cookie: w.su.cookieHeader() } },
            (res) => {
              resolve(res.headers);
              req.destroy();
            },
          );
          req.on('error', reject);
        });
        expectSecurityHeaders(headers, `GET ${url}`);
        continue;
      }
      for (const client of [w.su, t.client()]) {
        const res = await client.get(url, 'html');
        expectSecurityHeaders(res.headers, `GET ${url} (${res.statusCode})`);
        if (String(res.headers['content-type']).startsWith('text/html')) {
          expectNoInlineCode(res.body, url);
          pages += 1;
        }
      }
    }
    expect(pages).toBeGreaterThan(10);
  });

  it('should send them on error pages and on a refused request', async () => {
    for (const res of [
      await t.client().get('/no-such-page', 'html'),
      await w.user.get('/admin/sessions', 'html'),
      await w.su.get('/admin/users/999999', 'html'),
      await w.su.get('/admin/sessions?page=0', 'html'),
      await w.su.postForm('/admin/sessions/bulk-revoke', { ids: ['x'] }, { csrf: null }),
    ]) {
      expectSecurityHeaders(res.headers, `${res.statusCode}`);
      expectNoInlineCode(res.body, `${res.statusCode}`);
    }
    const refused = await t.client().get('/api/auth/session');
    expect(refused.statusCode).toBe(401);
    expectApiHeaders(refused.headers, 'GET /api/auth/session without a cookie');
  });
});

describe('HSTS', () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close();
  });

  it('should be sent over HTTPS as a trusted proxy reports it, and never over plain HTTP', async () => {
    const trusted = await makeApp('sqlite', { env: { TRUST_PROXY: 'true' } });
    const direct = await makeApp('sqlite');
    apps.push(trusted, direct);
    const overHttps = { 'x-forwarded-proto': 'https' };

    const https = await trusted
      .client()
      .request({ method: 'GET', url: '/login', headers: overHttps });
    expect(https.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    const plain = await trusted.client().get('/login');
    expect(plain.headers['strict-transport-security']).toBeUndefined();
    // A client that is not a trusted proxy cannot claim HTTPS.
    const claimed = await direct
      .client()
      .request({ method: 'GET', url: '/login', headers: overHttps });
    expect(claimed.headers['strict-transport-security']).toBeUndefined();
  });
});
