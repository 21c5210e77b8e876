/**
 * Escaping: user agents, emails, an IP from X-Forwarded-For behind a trusted proxy, filter
 * values and a saved view's name that carry HTML or script show up as text on every console
 * page (from the route table), in toasts, in the audit log; in CSV exports no cell can run as a
 * formula; JSON answers are served as JSON, never sniffed as HTML.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeHtml } from '../../src/views/html.js';
import { toastAfter } from '../routes/helpers.js';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { parseCsv } from '../support/csv.js';
import {
  HOSTILE_AGENTS,
  HOSTILE_EMAILS,
  HOSTILE_FILTER,
  HOSTILE_IP,
  HOSTILE_VIEW_NAME,
  type Seeded,
  seedHostile,
  UNESCAPED,
} from './hostile.js';
import { makeWorld, routesOf, urlFor, type World } from './support.js';

const FORWARDED_IP = `<img/src=x/onerror=alert('xss-xff')>`;

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`escaping (${kind})`, () => {
    let t: TestApp;
    let w: World;
    let seeded: Seeded;

    beforeAll(async () => {
      t = await makeApp(kind, { env: { TRUST_PROXY: 'true' } });
      w = await makeWorld(t);
      seeded = await seedHostile(t, w.su);
      // A real sign-in through a trusted proxy, from a hostile forwarded address and agent.
      const c = t.client();
      c.userAgent = HOSTILE_AGENTS[0];
      const token = await c.csrf();
      const login = await c.request({
        method: 'POST',
        url: '/api/auth/login',
        json: { email: HOSTILE_EMAILS[2], password: 'correct horse battery' },
        headers: { 'x-csrf-token': token, 'x-forwarded-for': FORWARDED_IP },
      });
      expect(login.statusCode, login.body).toBe(200);
      const saved = await c.postJson('/admin/saved-views', { page: 'users', name: 'mine' });
      expect(saved.statusCode, saved.body).toBe(201);
      // Hostile text into the history and the audit log, through the console itself.
      await w.su.postJson(`/admin/sessions/revoke/${seeded.sessionIds[1]}`, {});
      await w.su.postJson(`/admin/users/${seeded.userIds[3]}/disable`, {});
    });
    afterAll(async () => {
      await t?.close();
    });

    /** Every HTML page a superuser can open, with the hostile users' own pages and filters. */
    function pages(): string[] {
      const fromTable = routesOf(t)
        .filter((r) => r.method === 'GET' && !r.url.startsWith('/static/') && !r.schema.produces)
        .map((r) => urlFor(w, r));
      const filter = encodeURIComponent(HOSTILE_FILTER);
      return [
        ...fromTable,
        ...seeded.userIds.map((id) => `/admin/users/${id}`),
        `/admin/sessions?email=${filter}`,
        `/admin/sessions/revoke-matching?email=${filter}`,
        `/admin/users?email=${filter}`,
        `/admin/sessions/ended?email=${filter}`,
        `/admin/audit?actor=${filter}`,
        '/admin/sessions?per_page=200',
      ];
    }

    it('should show every hostile value as text on every console page', async () => {
      let html = 0;
      const seen = new Set<string>();
      for (const url of pages()) {
        const res = await w.su.get(url, 'html');
        expect(res.statusCode, url).toBeLessThan(500);
        if (!String(res.headers['content-type']).startsWith('text/html')) {
          // JSON (and CSV) is data: served as such, and a browser never sniffs it as a page.
          expect(res.headers['x-content-type-options'], url).toBe('nosniff');
          continue;
        }
        html += 1;
        expect(res.body, url).not.toMatch(UNESCAPED);
        for (const value of [...HOSTILE_EMAILS, HOSTILE_IP, HOSTILE_VIEW_NAME, HOSTILE_FILTER]) {
          if (res.body.includes(escapeHtml(value))) seen.add(value);
        }
        // A forwarded address that is no IP address is stored as "unknown": not even escaped.
        expect(res.body, url).not.toContain(escapeHtml(FORWARDED_IP));
      }
      expect(html).toBeGreaterThan(15);
      // Each value was on some page, escaped: the check above looked at them.
      expect([...seen].sort()).toEqual(
        [...HOSTILE_EMAILS, HOSTILE_IP, HOSTILE_VIEW_NAME, HOSTILE_FILTER].sort(),
      );
    });

    it('should show a hostile email in a toast as text', async () => {
      const res = await w.su.postForm(`/admin/users/${seeded.userIds[1]}/disable`, {
        return_to: '/admin/users',
      });
      expect(res.statusCode).toBe(303);
      const page = await w.su.get(String(res.headers.location), 'html');
      expect(page.body).not.toMatch(UNESCAPED);
      expect(page.body).toContain(
        `<div class="toast-body">${escapeHtml(HOSTILE_EMAILS[1])} is now disabled`,
      );
      expect(
        await toastAfter(w.su, await w.su.postForm(`/admin/users/${seeded.userIds[1]}/enable`, {})),
      ).toBe(`${HOSTILE_EMAILS[1]} is now approved.`);
    });

    it('should neutralise every formula-like cell of the CSV exports', async () => {
      for (const url of [
        '/admin/sessions/export.csv?status=all',
        '/admin/sessions/ended/export.csv',
        '/admin/audit/export.csv',
      ]) {
        const res = await w.su.get(url);
        expect(res.statusCode, url).toBe(200);
        expect(res.headers['content-type'], url).toMatch(/^text\/csv/);
        const cells = parseCsv(res.body).flat();
        for (const cell of cells) expect(cell, `${url}: ${cell}`).not.toMatch(/^[=+\-@\t\r]/);
        expect(
          cells.some((c) => c.startsWith(`'=`) || c.startsWith(`'@`)),
          url,
        ).toBe(true);
      }
      const sessions = parseCsv(
        (await w.su.get('/admin/sessions/export.csv?status=all')).body,
      ).flat();
      expect(sessions).toContain(`'${HOSTILE_EMAILS[2]}`);
      expect(sessions).toContain(`'${HOSTILE_AGENTS[2]}`);
      expect(sessions).not.toContain(FORWARDED_IP);
      expect(sessions).toContain('unknown');
    });

    it('should answer JSON exports and listings as JSON holding the values as they are', async () => {
      const res = await w.su.get('/admin/sessions/export.json?status=all');
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body).toContain(JSON.stringify(HOSTILE_EMAILS[0]).slice(1, -1));
    });
  });
}
