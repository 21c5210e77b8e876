/**
 * Input limits: every route's body, query and path parameters are declared by schema (checked
 * over the route table), input of the wrong shape answers 400 naming the field (JSON) or a page
 * saying so, a bulk revoke past BULK_REVOKE_MAX says so, and an oversized body is refused.
 * And the audit log has no way out: no route and no code path updates or deletes its rows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pageErrorCode } from '../routes/helpers.js';
import { Client, makeApp, type TestApp } from '../support/app.js';
import { serve } from '../support/browser.js';
import { makeWorld, routesOf, STATE_CHANGING, type World } from './support.js';

describe('input limits', () => {
  let t: TestApp;
  let w: World;

  beforeAll(async () => {
    t = await makeApp('sqlite', { env: { BULK_REVOKE_MAX: '20', STEP_UP_BULK_THRESHOLD: '5' } });
    w = await makeWorld(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('should declare a schema for the body of every state-changing route and for every path parameter', () => {
    for (const r of routesOf(t)) {
      const what = `${r.method} ${r.url}`;
      if (STATE_CHANGING.has(r.method)) expect(r.schema.body, what).toBeDefined();
      if (r.url.includes(':')) expect(r.schema.params, what).toBeDefined();
    }
  });

  it.each([
    ['/admin/sessions?page=0', 'page'],
    ['/admin/sessions?page=abc', 'page'],
    ['/admin/sessions?per_page=100000', 'per_page'],
    ['/admin/sessions?status=sideways', 'status'],
    ['/admin/sessions?created_from=2024-13-45', 'created_from'],
    ['/admin/sessions?created_from=yesterday', 'created_from'],
    ['/admin/users?from=2024-02-30', 'from'],
    ['/admin/users?page=-3', 'page'],
    ['/admin/users/abc', 'userId'],
    ['/admin/users/0', 'userId'],
    ['/admin/users/99999999999999', 'userId'],
    ['/admin/audit?from=31-12-2024', 'from'],
    ['/admin/analytics?from=2020-01-01&to=2025-01-01', 'to'],
    ['/admin/sessions/ended?kind=exploded', 'kind'],
    ['/admin/saved-views?page=everything', 'page'],
  ])('should answer GET %s with 400 naming %s, as JSON and as a page', async (url, field) => {
    const json = await w.su.get(url, 'json');
    expect(json.statusCode, json.body).toBe(400);
    expect(json.json().error.code).toBe('WARDEN_VALIDATION');
    expect(json.json().error.details.field, json.body).toBe(field);
    expect(json.json().error.message).toContain(field);

    const page = await w.su.get(url, 'html');
    expect(page.statusCode).toBe(400);
    expect(pageErrorCode(page.body)).toBe('WARDEN_VALIDATION');
    expect(page.body).toContain(field);
  });

  it.each([
    ['/admin/sessions/revoke/not-a-session-id', {}, 'sessionId'],
    [`/admin/sessions/revoke/${'A'.repeat(64)}`, {}, 'sessionId'],
    ['/admin/sessions/revoke-user/-1', {}, 'userId'],
    ['/admin/users/bulk-approve', { ids: ['seven'] }, 'ids.0'],
    ['/admin/users/1/role', { role: 'emperor' }, 'role'],
    ['/admin/saved-views', { page: 'sessions' }, 'name'],
    ['/admin/saved-views/x/delete', {}, 'viewId'],
    ['/admin/sessions/revoke-matching', {}, 'confirm'],
    ['/api/auth/login', { email: 'a@b.test' }, 'password'],
    ['/api/auth/step-up', {}, 'password'],
  ])(
    'should answer POST %s with a body of the wrong shape with 400 naming the field',
    async (url, body, field) => {
      const res = await w.su.postJson(url, body);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.code).toBe('WARDEN_VALIDATION');
      expect(res.json().error.details.field).toBe(field);
    },
  );

  it('should refuse a bulk revoke of more than BULK_REVOKE_MAX ids and say so', async () => {
    const ids = Array.from({ length: 21 }, (_, i) => i.toString(16).padStart(64, '0'));
    const res = await w.su.postJson('/admin/sessions/bulk-revoke', { ids });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'WARDEN_BULK_TOO_MANY', details: { max: 20 } });
    expect(res.json().error.message).toBe('Too many ids: 21 given, at most 20 allowed');

    const form = await w.su.postForm('/admin/sessions/bulk-revoke', { ids });
    expect(form.statusCode).toBe(400);
    expect(form.body).toContain('at most 20 allowed');
  });

  it('should refuse a body over 256 KB with 413, and malformed JSON with a clear 400', async () => {
    const big = await w.su.postJson('/admin/saved-views', {
      page: 'sessions',
      name: 'x',
      query: 'a'.repeat(300 * 1024),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error).toMatchObject({
      code: 'WARDEN_BODY_TOO_LARGE',
      message: 'The body is larger than 256 KB',
    });

    const broken = await w.su.request({
      method: 'POST',
      url: '/admin/saved-views',
      headers: { 'content-type': 'application/json', 'x-csrf-token': await w.su.csrf() },
      json: undefined,
    });
    expect([400, 415]).toContain(broken.statusCode);
    /** A login with this text as its JSON body, sent as it is, with a good token. */
    const loginWith = async (raw: string) =>
      w.su.request({
        method: 'POST',
        url: '/api/auth/login',
        headers: { 'content-type': 'application/json', 'x-csrf-token': await w.su.csrf() },
        raw,
      });
    const garbled = await loginWith('{"email": ');
    expect(garbled.statusCode).toBe(400);
    expect(garbled.json().error.code).toBe('WARDEN_VALIDATION');
    expect(garbled.json().error.message).not.toContain('__proto__');
    // Where it stops being JSON, and which part of the request: never the body's own text,
    // which may be a password.
    expect(garbled.json().error).toMatchObject({
      message: 'Invalid request: body is not valid JSON (it ends too soon)',
      details: { field: 'body', where: 'body' },
    });
    const comma = await loginWith('{"email": "a@b.test", "password": "x",}');
    expect(comma.json().error.message).toBe(
      'Invalid request: body is not valid JSON (at character 39)',
    );
    const bare = await loginWith('hunter2-is-my-password');
    expect(bare.statusCode).toBe(400);
    expect(bare.body).not.toContain('hunter2');
    // Valid JSON, refused for its key: the answer says which rule, not that it is no JSON.
    const proto = await loginWith(
      '{"email": "a@b.test", "password": "x", "__proto__": {"admin": true}}',
    );
    expect(proto.statusCode).toBe(400);
    expect(proto.json().error.message).toBe(
      'Invalid request: body must not use the key __proto__ or constructor.prototype',
    );
  });

  it('should say which values a field allows, and that a missing field is required', async () => {
    const role = await w.su.postJson('/admin/users/1/role', { role: 'emperor' });
    expect(role.json().error.message).toMatch(
      /^Invalid request: role must be one of: .*"superuser"/,
    );
    expect(role.json().error.message).toContain('"user"');
    // Given as a list, the answer still names the words.
    const listed = await w.su.postJson('/admin/users/1/role', { role: ['user', 'admin'] });
    expect(listed.statusCode).toBe(400);
    expect(listed.json().error.message).toMatch(/^Invalid request: role must be one of: .*"user"/);
    const status = await w.su.get('/admin/sessions?status=sideways', 'json');
    expect(status.json().error.message).toBe(
      'Invalid request: status must be one of: "all", "active", "expired"',
    );
    const login = await w.su.postJson('/api/auth/login', { email: 'a@b.test' });
    expect(login.json().error.message).toBe('Invalid request: password is required');
  });

  it("should answer an address the router refuses with 400 in Warden's error shape", async () => {
    // Past the router's maxParamLength, and a path part that does not decode.
    const long = await w.su.postJson(`/admin/sessions/revoke/${'a'.repeat(5_000)}`, {});
    expect(long.statusCode).toBe(400);
    expect(long.json()).toEqual({
      error: {
        code: 'WARDEN_VALIDATION',
        message: 'Invalid request: a part of the address is too long',
      },
    });
    const garbled = await w.su.get('/admin/users/%E0%A4%A', 'json');
    expect(garbled.statusCode).toBe(400);
    expect(garbled.json().error).toMatchObject({
      code: 'WARDEN_VALIDATION',
      message: 'Invalid request: the address is not valid',
    });
  });

  it('should answer a browser a page, with the security headers, for an address it refuses', async () => {
    const res = await w.su.app.inject({
      method: 'GET',
      url: '/admin/%zz',
      headers: { accept: 'text/html' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toContain('data-error-code="WARDEN_VALIDATION"');
    expect(res.body).toContain('the address is not valid');
    expect(res.body).toContain('href="/"');
    // No hook ran: the headers are set by the refusal itself.
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toBe('no-store');
    const api = await w.su.app.inject({
      method: 'GET',
      url: '/api/auth/%zz',
      headers: { accept: 'text/html' },
    });
    expect(api.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(api.headers['content-security-policy']).toBe(
      "default-src 'none';frame-ancestors 'none'",
    );
  });

  it('should answer a body that is neither JSON nor a form with 415, naming its type', async () => {
    const res = await w.su.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'content-type': 'text/xml; charset=utf-8', 'x-csrf-token': await w.su.csrf() },
      payload: '<login/>',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('WARDEN_UNSUPPORTED_MEDIA_TYPE');
    expect(res.json().error.message).toContain('not text/xml');
    // A browser's page says what kind of trouble it was, as every refusal's does.
    const page = await w.su.app.inject({
      method: 'POST',
      url: '/admin/saved-views',
      headers: { 'content-type': 'text/xml', accept: 'text/html', cookie: w.su.cookieHeader() },
      payload: '<view/>',
    });
    expect(page.statusCode).toBe(415);
    expect(page.body).toContain('<title>That request was not right · Warden</title>');
  });

  it('should take a JSON content type with an empty body as no body (sign out)', async () => {
    await t.createUser('empty-body@example.com');
    const client = new Client(t.app);
    await client.login('empty-body@example.com');
    const res = await client.app.inject({
      method: 'POST',
      url: '/api/auth/logout',
      headers: {
        'content-type': 'application/json',
        'x-csrf-token': await client.csrf(),
        cookie: client.cookieHeader(),
      },
      payload: '',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ signedOut: true });
  });

  it("should answer a request head over 16 KB with 431 in Warden's error shape", async () => {
    const base = await serve(t);
    const res = await fetch(`${base}/admin/sessions?email=${'a'.repeat(20_000)}`);
    expect(res.status).toBe(431);
    // Refused by Node before any hook: the answer carries the security headers all the same.
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none';frame-ancestors 'none'",
    );
    expect((await res.json()).error).toMatchObject({
      code: 'WARDEN_HEADERS_TOO_LARGE',
      message: expect.stringContaining('16 KB'),
    });
  });
});

describe('the audit log is append-only', () => {
  const SRC = path.resolve(import.meta.dirname, '../../src');
  const files = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) return files(full);
      return /\.(ts|js)$/.test(e.name) ? [full] : [];
    });

  it('should have no code path that updates or deletes an audit row (migrations aside)', () => {
    const writes =
      /updateTable\(\s*['"]audit_log|deleteFrom\(\s*['"]audit_log|(?:update|delete\s+from|truncate(?:\s+table)?)\s+audit_log|dropTable\(\s*['"]audit_log/i;
    const offenders = files(SRC)
      .filter((f) => !f.endsWith(path.join('db', 'migrations.ts')))
      .filter((f) => writes.test(fs.readFileSync(f, 'utf8')))
      .map((f) => path.relative(SRC, f));
    expect(offenders).toEqual([]);

    // The one migration that rewrites rows only fills in the chain columns it added.
    const migrations = fs.readFileSync(path.join(SRC, 'db', 'migrations.ts'), 'utf8');
    const updates = migrations.match(/update audit_log set [^`]*/gi) ?? [];
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatch(
      /^update audit_log set prev_hash = \$\{prev\}, hash = \$\{hash\} where id/,
    );
  });

  it('should have no route that changes the audit log', async () => {
    const t = await makeApp('sqlite');
    try {
      const routes = routesOf(t);
      expect(routes.filter((r) => ['PUT', 'PATCH', 'DELETE'].includes(r.method))).toEqual([]);
      const auditWrites = routes.filter((r) => STATE_CHANGING.has(r.method) && /audit/.test(r.url));
      expect(auditWrites).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
