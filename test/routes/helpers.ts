/**
 * Shared pieces of the route suites: sessions written straight into the store with chosen
 * times (and a usable cookie), what a browser would see after a redirect, and the audit rows.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { AuditRow } from '../../src/db/schema.js';
import type { SessionRecord } from '../../src/sessions/session-store.js';
import type { Client, TestApp } from '../support/app.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Start of the UTC day `daysAgo` days before today. */
export function dayStart(daysAgo: number, now = Date.now()): number {
  return Math.floor(now / DAY) * DAY - daysAgo * DAY;
}

/** `YYYY-MM-DD` of a time, in UTC. */
export function isoDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

export interface Planted {
  id: string;
  /** The cookie value that authenticates as this session. */
  token: string;
  record: SessionRecord;
}

/**
 * Stores a session as sign-in would (the record and its `signed_in` history row), with the
 * times chosen by the test. Active by default; `expired: true` puts both deadlines in the past.
 */
export async function plantSession(
  t: TestApp,
  userId: number,
  opts: { createdAt?: number; expired?: boolean; ip?: string; userAgent?: string } = {},
): Promise<Planted> {
  const now = Date.now();
  const createdAt = opts.createdAt ?? now - MINUTE;
  const token = randomBytes(32).toString('base64url');
  const id = createHash('sha256').update(token).digest('hex');
  const record: SessionRecord = {
    id,
    userId,
    createdAt,
    lastSeenAt: createdAt,
    idleExpiresAt: opts.expired
      ? Math.min(createdAt + 30 * MINUTE, now - MINUTE)
      : now + 30 * MINUTE,
    absoluteExpiresAt: opts.expired
      ? Math.min(createdAt + 12 * HOUR, now - MINUTE)
      : now + 12 * HOUR,
    ip: opts.ip ?? '203.0.113.7',
    userAgent:
      opts.userAgent ?? 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  };
  await t.store.create(record);
  await t.database.db
    .insertInto('session_events')
    .values({
      session_id: id,
      user_id: userId,
      kind: 'signed_in',
      reason: null,
      actor_id: null,
      at: createdAt,
      ip: record.ip,
      user_agent: record.userAgent,
    })
    .execute();
  return { id, token, record };
}

/** A random, well-formed session id that no session ever had. */
export function unknownId(): string {
  return createHash('sha256').update(randomBytes(16)).digest('hex');
}

/** A client that carries a planted session's cookie, as the browser that signed in would. */
export function clientWith(t: TestApp, planted: Planted): Client {
  const c = t.client();
  c.cookies.set('warden_session', planted.token);
  return c;
}

/** A signed-in client, through the real sign-in API. */
export async function signedIn(t: TestApp, email: string) {
  const c = t.client();
  const login = await c.login(email);
  return { client: c, sessionId: login.session.id, userId: login.user.id };
}

/** Whether a client's cookie still authenticates (200) or not (401), as the API answers. */
export async function whoamiStatus(c: Client): Promise<number> {
  return (await c.get('/api/auth/session')).statusCode;
}

/** Follows a 303 with the same client and returns the toast text it shows (or null). */
export async function toastAfter(c: Client, res: LightMyRequestResponse): Promise<string | null> {
  expect(res.statusCode).toBe(303);
  const page = await c.get(String(res.headers.location), 'html');
  expect(page.statusCode).toBe(200);
  return toastOf(page.body);
}

export function toastOf(body: string): string | null {
  const m = /<div class="toast-body">([^<]*)<\/div>/.exec(body);
  return m ? decodeEntities(m[1]) : null;
}

/** `data-total` of the sessions page's match count. */
export function matchCount(body: string): number {
  const m = /id="match-count" data-total="(\d+)"/.exec(body);
  if (!m) throw new Error('no match count on the page');
  return Number(m[1]);
}

/** Ids of the session rows on a sessions page, in order. */
export function rowIds(body: string): string[] {
  return [...body.matchAll(/<tr data-session-id="([0-9a-f]{64})"/g)].map((m) => m[1]);
}

/** The value of a hidden input on a page, as the browser would submit it. */
export function hiddenInput(body: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(body);
  if (!m) throw new Error(`no hidden input ${name} on the page`);
  return decodeEntities(m[1]);
}

/** The error code a friendly error page carries. */
export function pageErrorCode(body: string): string | null {
  return /data-error-code="([A-Z_]+)"/.exec(body)?.[1] ?? null;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#96;/g, '`')
    .replace(/&amp;/g, '&');
}

/** Audit rows of one action, oldest first, with their details parsed. */
export async function auditRows(t: TestApp, action: string) {
  const rows: AuditRow[] = await t.database.db
    .selectFrom('audit_log')
    .selectAll()
    .where('action', '=', action)
    .orderBy('id', 'asc')
    .execute();
  return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
}

/** A user's `revoked` history rows, once every row a revocation still writes is in. */
export async function revokedRows(t: TestApp, userId: number) {
  await t.settled();
  return t.database.db
    .selectFrom('session_events')
    .select(['session_id', 'reason', 'actor_id'])
    .where('user_id', '=', userId)
    .where('kind', '=', 'revoked')
    .execute();
}

/** The latest audit row of one action. */
export async function lastAudit(t: TestApp, action: string) {
  const rows = await auditRows(t, action);
  const last = rows.at(-1);
  if (!last) throw new Error(`no audit row for ${action}`);
  return last;
}

/** Fails when any audit row holds one of these secrets anywhere. */
export async function expectNoSecretsInAudit(t: TestApp, secrets: readonly string[]) {
  const rows = await t.database.db.selectFrom('audit_log').selectAll().execute();
  const text = JSON.stringify(rows);
  for (const secret of secrets) expect(text).not.toContain(secret);
}

/** Sessions of the store matching a console query, as the JSON listing answers. */
export async function listJson(c: Client, search = '') {
  const res = await c.get(`/admin/sessions${search}`, 'json');
  expect(res.statusCode).toBe(200);
  return res.json() as {
    total: number;
    page: number;
    perPage: number;
    skipped: number;
    active: number;
    items: { id: string; userId: number; email: string; status: string; current: boolean }[];
  };
}

export const ZERO_COUNTS = {
  revoked: 0,
  already_ended: 0,
  not_found: 0,
  invalid: 0,
  kept_own: 0,
  failed: 0,
};
