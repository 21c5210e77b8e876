/**
 * What the security suites share: the app's own route table (so a route added later is covered
 * without anyone listing it), who may use each route, the fixtures that make a route's request
 * valid (real ids, so the guard or the CSRF check refuses rather than a 404), and a snapshot of
 * every stored thing a request could change.
 */
import { expect } from 'vitest';
import type { RouteEntry } from '../../src/app.js';
import { type Planted, plantSession } from '../routes/helpers.js';
import type { Client, TestApp } from '../support/app.js';

export interface Route {
  method: string;
  url: string;
  schema: Record<string, unknown>;
}

/** Every route once per method, HEAD left out (Fastify answers it from the GET). */
export function routesOf(t: TestApp): Route[] {
  const seen = new Set<string>();
  const out: Route[] = [];
  for (const r of t.app.routeTable as readonly RouteEntry[]) {
    if (r.method === 'HEAD' || r.method === 'OPTIONS') continue;
    // The console's root is registered as `/admin` and `/admin/`: one route.
    const url = r.url.length > 1 ? r.url.replace(/\/$/, '') : r.url;
    const key = `${r.method} ${url}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ method: r.method, url, schema: r.schema ?? {} });
  }
  return out;
}

export const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Who a route is for. A route that fits none of these fails the suites until someone decides:
 * that is the point of walking the route table.
 */
export type Access = 'public' | 'home' | 'signed-in' | 'superuser' | 'metrics';

const PUBLIC = new Set([
  '/login',
  '/register',
  '/logout',
  '/api/auth/csrf',
  '/api/auth/register',
  '/api/auth/login',
  '/api/auth/logout',
  '/api/openapi.json',
  '/healthz',
  '/readyz',
]);
const SIGNED_IN = new Set(['/api/auth/session', '/api/auth/password', '/api/auth/step-up']);

export function accessOf(url: string): Access {
  if (url === '/admin' || url.startsWith('/admin/')) return 'superuser';
  if (url.startsWith('/me/') || SIGNED_IN.has(url)) return 'signed-in';
  if (url === '/') return 'home';
  if (url === '/metrics') return 'metrics';
  if (PUBLIC.has(url) || url.startsWith('/static/')) return 'public';
  throw new Error(`route ${url} is not classified: add it to test/security/support.ts`);
}

/** Streams that never end under inject(): read over a socket instead. */
export function isStream(route: Route): boolean {
  const produces = route.schema.produces as string[] | undefined;
  return produces?.includes('text/event-stream') ?? false;
}

/** The people and things the fixtures use, on one app. */
export interface World {
  t: TestApp;
  su: Client;
  admin: Client;
  user: Client;
  suId: number;
  userId: number;
  victimId: number;
  /** A view of the superuser's, for routes that name one. */
  viewId: number;
  /** A live session of the victim, for routes that name one. */
  victimSession: Planted;
  /** Another session of `user`'s, for /me routes that name one. */
  userOtherSession: string;
  next(): number;
}

let seq = 0;

export async function makeWorld(t: TestApp): Promise<World> {
  const suId = (await t.createUser('su@example.test', 'superuser')).id;
  await t.createUser('amy@example.test', 'admin');
  const userId = (await t.createUser('joe@example.test', 'user')).id;
  const victimId = (await t.createUser('victim@example.test', 'user')).id;
  const su = t.client();
  await su.login('su@example.test');
  const admin = t.client();
  await admin.login('amy@example.test');
  const user = t.client();
  await user.login('joe@example.test');
  const other = t.client();
  const userOtherSession = (await other.login('joe@example.test')).session.id;

  const view = await t.database.db
    .insertInto('saved_views')
    .values({ owner_id: suId, page: 'sessions', name: 'fixture', query: '', created_at: 1 })
    .returning('id')
    .executeTakeFirstOrThrow();
  return {
    t,
    su,
    admin,
    user,
    suId,
    userId,
    victimId,
    viewId: Number(view.id),
    victimSession: await plantSession(t, victimId),
    userOtherSession,
    next: () => ++seq,
  };
}

/** A concrete URL for a route: its parameters filled with ids that exist. */
export function urlFor(w: World, route: Route): string {
  const url = route.url
    .replace(':sessionId', route.url.startsWith('/me/') ? w.userOtherSession : w.victimSession.id)
    .replace(':userId', String(w.victimId))
    .replace(':viewId', String(w.viewId));
  if (url.includes(':') || url.includes('*')) {
    if (url === '/static/*') return '/static/warden.css';
    if (url === '/static/bootstrap/*') return '/static/bootstrap/css/bootstrap.min.css';
    if (url === '/static/chartjs/*') return '/static/chartjs/chart.umd.min.js';
    throw new Error(`no fixture for the parameters of ${route.url}: add one in support.ts`);
  }
  return url + (REQUIRED_QUERY[url] ?? '');
}

const REQUIRED_QUERY: Record<string, string> = { '/admin/saved-views': '?page=sessions' };

/** A request that a route accepts, made by the person it is for, changing something real. */
export interface Prepared {
  client: Client;
  url: string;
  body: Record<string, unknown>;
  /** The route reads an HTML form only. */
  formOnly?: boolean;
}

/** A fresh account for a fixture that changes it (approve, disable, its password …). */
async function freshUser(w: World, role: 'user' | 'admin' = 'user', status = 'approved') {
  const email = `fixture${w.next()}@example.test`;
  return w.t.createUser(email, role, status as 'approved');
}

/**
 * Makes a valid request of a state-changing route, with the state it needs set up. A route
 * without a fixture fails the suites: a new route must say how it succeeds.
 */
export async function prepare(w: World, route: Route): Promise<Prepared> {
  const { t } = w;
  const key = `${route.method} ${route.url}`;
  switch (key) {
    case 'POST /admin/sessions/revoke/:sessionId': {
      const s = await plantSession(t, w.victimId);
      return { client: w.su, url: `/admin/sessions/revoke/${s.id}`, body: {} };
    }
    case 'POST /admin/sessions/revoke-user/:userId': {
      const u = await freshUser(w);
      await plantSession(t, u.id);
      return { client: w.su, url: `/admin/sessions/revoke-user/${u.id}`, body: {} };
    }
    case 'POST /admin/sessions/bulk-revoke': {
      const s = await plantSession(t, w.victimId);
      return { client: w.su, url: '/admin/sessions/bulk-revoke', body: { ids: [s.id] } };
    }
    case 'POST /admin/sessions/revoke-matching': {
      const u = await freshUser(w);
      await plantSession(t, u.id);
      return {
        client: w.su,
        url: `/admin/sessions/revoke-matching?email=${encodeURIComponent(u.email)}`,
        body: { confirm: '1' },
      };
    }
    case 'POST /admin/sessions/cleanup-expired':
    case 'POST /admin/sessions/stats/repair':
      return { client: w.su, url: route.url, body: {} };
    case 'POST /admin/users/bulk-approve':
    case 'POST /admin/users/bulk-reject': {
      const u = await freshUser(w, 'user', 'pending');
      return { client: w.su, url: route.url, body: { ids: [u.id] } };
    }
    case 'POST /admin/users/:userId/approve':
    case 'POST /admin/users/:userId/reject':
    case 'POST /admin/users/:userId/disable':
    case 'POST /admin/users/:userId/enable': {
      const action = route.url.split('/').at(-1)!;
      const status = { approve: 'pending', reject: 'pending', disable: 'approved' }[action];
      const u = await freshUser(w, 'user', status ?? 'disabled');
      return { client: w.su, url: `/admin/users/${u.id}/${action}`, body: {} };
    }
    case 'POST /admin/users/:userId/role': {
      const u = await freshUser(w);
      return { client: w.su, url: `/admin/users/${u.id}/role`, body: { role: 'admin' } };
    }
    case 'POST /admin/policy':
      return {
        client: w.su,
        url: '/admin/policy',
        body: { idle_timeout: `${20 + (w.next() % 9)}m` },
      };
    case 'POST /admin/saved-views':
      return {
        client: w.su,
        url: '/admin/saved-views',
        body: { page: 'sessions', name: `view ${w.next()}`, query: 'status=active' },
      };
    case 'POST /admin/saved-views/:viewId/delete': {
      const v = await t.database.db
        .insertInto('saved_views')
        .values({ owner_id: w.suId, page: 'users', name: `v${w.next()}`, query: '', created_at: 1 })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { client: w.su, url: `/admin/saved-views/${v.id}/delete`, body: {} };
    }
    case 'POST /me/sessions/:sessionId/revoke':
    case 'POST /me/sessions/revoke-others': {
      const u = await freshUser(w);
      const c = t.client();
      await c.login(u.email);
      const other = (await t.client().login(u.email)).session.id;
      const url = route.url.replace(':sessionId', other);
      return { client: c, url, body: {} };
    }
    case 'POST /me/password':
    case 'POST /api/auth/password': {
      const u = await freshUser(w);
      const c = t.client();
      await c.login(u.email);
      const fresh = `a brand new passphrase ${w.next()}`;
      const body: Record<string, unknown> = {
        current_password: 'correct horse battery',
        new_password: fresh,
      };
      if (route.url === '/me/password') body.confirm_password = fresh;
      return { client: c, url: route.url, body, formOnly: route.url === '/me/password' };
    }
    case 'POST /api/auth/step-up':
      return { client: w.su, url: route.url, body: { password: 'correct horse battery' } };
    case 'POST /login':
    case 'POST /api/auth/login': {
      const u = await freshUser(w);
      return {
        client: t.client(),
        url: route.url,
        body: { email: u.email, password: 'correct horse battery' },
        formOnly: route.url === '/login',
      };
    }
    case 'POST /register':
    case 'POST /api/auth/register':
      return {
        client: t.client(),
        url: route.url,
        body: { email: `new${w.next()}@example.test`, password: 'a long unusual passphrase' },
        formOnly: route.url === '/register',
      };
    case 'POST /logout':
    case 'POST /api/auth/logout': {
      const u = await freshUser(w);
      const c = t.client();
      await c.login(u.email);
      return { client: c, url: route.url, body: {}, formOnly: route.url === '/logout' };
    }
    default:
      throw new Error(`no fixture for ${key}: add one in test/security/support.ts`);
  }
}

/** Form fields as the browser would send them (arrays as repeated fields). */
export function asForm(body: Record<string, unknown>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(body)) {
    out[k] = Array.isArray(v) ? v.map(fieldText) : fieldText(v);
  }
  return out;
}

/**
 * A generated value as a form field's text. String() throws on some generated objects (one
 * whose `toString` is not a function); a browser only ever sends text, so any text will do.
 */
function fieldText(v: unknown): string {
  try {
    return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** Everything a request could change, read straight from the database and the store. */
export async function snapshot(t: TestApp) {
  // An earlier revocation's history rows follow its answer; they are not this request's change.
  await t.settled();
  const { db } = t.database;
  const [users, views, settings, stepUps, events, audit] = await Promise.all([
    db
      .selectFrom('users')
      .select(['id', 'email', 'role', 'status', 'password_hash'])
      .orderBy('id')
      .execute(),
    db.selectFrom('saved_views').select(['id', 'name', 'query']).orderBy('id').execute(),
    db.selectFrom('settings').selectAll().orderBy('key').execute(),
    db.selectFrom('step_ups').select('session_id').orderBy('session_id').execute(),
    db
      .selectFrom('session_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow(),
    // Refusals are written on purpose; anything else would be a change.
    db
      .selectFrom('audit_log')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('outcome', '!=', 'refused')
      .executeTakeFirstOrThrow(),
  ]);
  const page = await t.store.list({ status: 'all', now: Date.now(), offset: 0, limit: 100_000 });
  return {
    users,
    views,
    settings,
    stepUps: stepUps.map((s) => s.session_id),
    sessions: page.items.map((s) => s.id).sort(),
    events: Number(events.n),
    audit: Number(audit.n),
  };
}

export type Snapshot = Awaited<ReturnType<typeof snapshot>>;

export async function expectUnchanged(t: TestApp, before: Snapshot, what: string) {
  expect(await snapshot(t), what).toEqual(before);
}

/** The number of audit rows of an action so far. */
export async function auditCount(t: TestApp, action: string): Promise<number> {
  const row = await t.database.db
    .selectFrom('audit_log')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('action', '=', action)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The newest audit rows of an action, newest first, details parsed. */
export async function latestAudit(t: TestApp, action: string, n: number) {
  const rows = await t.database.db
    .selectFrom('audit_log')
    .selectAll()
    .where('action', '=', action)
    .orderBy('id', 'desc')
    .limit(n)
    .execute();
  return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
}
