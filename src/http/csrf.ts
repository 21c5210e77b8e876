/**
 * @module http/csrf
 * CSRF tokens from @fastify/csrf: a per-browser secret in an HttpOnly cookie, tokens
 * bound to the session they were issued for (so another session's token is refused)
 * and valid in every tab at once. State-changing requests also refuse a foreign
 * `Origin` or `Sec-Fetch-Site: cross-site`.
 */
import Tokens from '@fastify/csrf';
import './context.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type CookieSettings, CSRF_COOKIE, secureFor } from './cookies.js';

export const CSRF_HEADER = 'x-csrf-token';
export const CSRF_FIELD = '_csrf';
const ANONYMOUS = 'anonymous';

// The package's call signature resolves to its userInfo-less overload; this is the
// shape it returns when `userInfo: true`.
interface BoundTokens {
  secretSync(): string;
  create(secret: string, userInfo: string): string;
  verify(secret: string, token: string, userInfo: string): boolean;
}

export class Csrf {
  readonly #tokens: BoundTokens;
  readonly #cookies: CookieSettings;

  constructor(hmacKey: string, validityMs: number, cookies: CookieSettings) {
    this.#tokens = Tokens({
      userInfo: true,
      hmacKey,
      validity: validityMs,
    }) as unknown as BoundTokens;
    this.#cookies = cookies;
  }

  /** A token for this request's viewer, creating the browser's secret when it has none. */
  token(request: FastifyRequest, reply: FastifyReply): string {
    let secret = request.csrfSecret ?? request.cookies[CSRF_COOKIE];
    if (!secret || secret.length < 16) {
      secret = this.#tokens.secretSync();
      reply.setCookie(CSRF_COOKIE, secret, {
        path: '/',
        httpOnly: true,
        sameSite: 'lax',
        secure: secureFor(request, this.#cookies),
      });
    }
    request.csrfSecret = secret;
    return this.#tokens.create(secret, userInfo(request));
  }

  /** Why the request fails the check, or null when it passes. */
  problem(request: FastifyRequest): string | null {
    const site = request.headers['sec-fetch-site'];
    if (site === 'cross-site') return 'cross-site request';
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `${request.protocol}://${request.host}`) {
      return 'foreign origin';
    }

    const secret = request.cookies[CSRF_COOKIE];
    if (!secret) return 'no CSRF cookie';
    // The JSON API takes its token from the header only: a form's _csrf field is one more
    // field it does not read.
    const body = request.url.startsWith('/api/')
      ? undefined
      : (request.body as Record<string, unknown> | undefined);
    const header = request.headers[CSRF_HEADER];
    const token = typeof header === 'string' ? header : body?.[CSRF_FIELD];
    if (typeof token !== 'string' || token === '') return 'missing token';
    if (!this.#tokens.verify(secret, token, userInfo(request))) return 'invalid or expired token';
    return null;
  }
}

function userInfo(request: FastifyRequest): string {
  return request.auth?.session.id ?? ANONYMOUS;
}
