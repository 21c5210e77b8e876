/**
 * @module http/auth
 * Who a request is: the session cookie checked against the store once per request,
 * and the guards that routes and scopes apply. Fails closed: when the store cannot
 * answer, nobody is signed in and guarded routes answer 503.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { WardenError } from '../errors.js';
import type { Actor, AuditEntry, AuditLog } from '../events/audit.js';
import { StoreUnavailableError } from '../resilience/guarded-store.js';
import type { SessionService } from '../sessions/session-service.js';
import { clientIp } from './client-ip.js';
import {
  type CookieSettings,
  clearSessionCookie,
  SESSION_COOKIE,
  setSessionCookie,
} from './cookies.js';
import type { Csrf } from './csrf.js';
import { PROBE_PATHS } from './health-routes.js';
import { checkFirst } from './route-checks.js';
import { preAuthOf } from './session-fast-path.js';

export interface AuthDeps {
  sessions: SessionService;
  audit: AuditLog;
  csrf: Csrf;
  cookies: CookieSettings;
  clock: () => number;
}

/** The person acting, as the audit log records them. */
export function actorOf(request: FastifyRequest): Actor {
  const user = request.auth?.user;
  return { id: user?.id ?? null, email: user?.email ?? null, ip: clientIp(request) };
}

/** The audit action of the route serving a console change (see FastifyContextConfig). */
export function auditActionOf(request: FastifyRequest): string {
  const action = request.routeOptions.config.auditAction;
  if (action === undefined) throw new Error(`${request.routeOptions.url} declares no audit action`);
  return action;
}

/**
 * Writes the audit row of the console change a request asked for, and marks the request so
 * that the console's error hook (admin-routes) writes no second row for it.
 */
export async function auditChange(
  audit: AuditLog,
  request: FastifyRequest,
  entry: Omit<AuditEntry, 'action'>,
): Promise<void> {
  request.audited = true;
  await audit.write(actorOf(request), { action: auditActionOf(request), ...entry }, request.log);
}

export function installAuth(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest('auth', null);
  app.decorateRequest('storeDown', false);
  app.decorateRequest('csrfSecret', undefined);

  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/static/') || PROBE_PATHS.includes(request.url)) return;
    const token = request.cookies[SESSION_COOKIE];
    if (!token) return;

    try {
      // The fast path may have asked the store already (session-fast-path.ts): not twice.
      const pre = preAuthOf(request.raw);
      if (pre && 'error' in pre) throw pre.error;
      const auth = pre ? pre.auth : await deps.sessions.authenticate(token);
      request.auth = auth;
      if (auth?.touched) {
        setSessionCookie(request, reply, token, auth.session, deps.clock(), deps.cookies);
      } else if (!auth) {
        clearSessionCookie(request, reply, deps.cookies);
      }
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      request.storeDown = true;
    }
  });
}

/** Signed-in users only. */
export async function requireUser(request: FastifyRequest): Promise<void> {
  if (request.auth) return;
  if (request.storeDown) throw new WardenError('WARDEN_STORE_UNAVAILABLE');
  throw new WardenError('WARDEN_AUTH_REQUIRED');
}

/** Superusers only; a signed-in non-superuser's attempt is audited as refused. */
export function requireSuperuser(deps: Pick<AuthDeps, 'audit'>) {
  return async function superuserOnly(request: FastifyRequest): Promise<void> {
    await requireUser(request);
    if (request.auth?.user.role === 'superuser') return;

    await deps.audit.write(
      actorOf(request),
      {
        action: 'admin.access',
        target: `${request.method} ${request.routeOptions.url ?? request.url}`,
        outcome: 'refused',
        details: { reason: 'not a superuser', role: request.auth?.user.role },
      },
      request.log,
    );
    throw new WardenError('WARDEN_FORBIDDEN');
  };
}

const csrfChecks = new WeakSet<object>();

/**
 * Moves a route's CSRF check (a requireCsrf preHandler) ahead of every check of its input (from
 * an onRoute hook, after the hooks that add those): a forged request is refused with 403 and
 * audited as forged whatever it carries. Behind a parameter the route does not take, or a value
 * its schema refuses, it was a 400 that left no row. The check reads only the token (a field
 * or a header), which parsing has made available by then.
 */
export function csrfFirst(route: RouteOptions): void {
  const handlers = [route.preHandler ?? []].flat();
  const checks = handlers.filter((h) => csrfChecks.has(h));
  if (checks.length === 0) return;
  route.preHandler = handlers.filter((h) => !csrfChecks.has(h));
  checkFirst(route, ...checks);
}

/** Refuses a state-changing request without a valid CSRF token or from another origin. */
export function requireCsrf(deps: Pick<AuthDeps, 'audit' | 'csrf'>) {
  const check = async function csrfChecked(
    request: FastifyRequest,
    _reply: FastifyReply,
  ): Promise<void> {
    const problem = deps.csrf.problem(request);
    if (!problem) return;
    // The token is bound to the session, which cannot be read while the store is away: the
    // request is not forged, it cannot be checked yet. Say so, as every other route does.
    if (!request.auth && request.storeDown) throw new WardenError('WARDEN_STORE_UNAVAILABLE');

    await deps.audit.write(
      actorOf(request),
      {
        action: 'csrf.refused',
        target: `${request.method} ${request.routeOptions.url ?? request.url}`,
        outcome: 'refused',
        details: { reason: problem },
      },
      request.log,
    );
    throw new WardenError('WARDEN_CSRF_INVALID', [problem], { reason: problem });
  };
  csrfChecks.add(check);
  return check;
}
