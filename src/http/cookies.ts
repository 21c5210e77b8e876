/**
 * @module http/cookies
 * The session cookie: HttpOnly, SameSite=Lax, Path=/, Secure when configured or when
 * the request came over HTTPS, and a Max-Age equal to the session's remaining life so
 * the browser and the store agree on when it ends.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import './context.js';
import { expiresAt, type SessionRecord } from '../sessions/session-store.js';

export const SESSION_COOKIE = 'warden_session';
export const FLASH_COOKIE = 'warden_flash';
export const CSRF_COOKIE = 'warden_csrf';

export interface CookieSettings {
  secure: boolean;
}

function isSecure(request: FastifyRequest, settings: CookieSettings): boolean {
  return settings.secure || request.protocol === 'https';
}

export function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  token: string,
  session: SessionRecord,
  now: number,
  settings: CookieSettings,
): void {
  // Rounded up: a session with 0.9 s left must not get a cookie that is already gone.
  const maxAge = Math.max(0, Math.ceil((expiresAt(session) - now) / 1000));
  reply.setCookie(SESSION_COOKIE, token, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: isSecure(request, settings),
    maxAge,
  });
}

export function clearSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  settings: CookieSettings,
): void {
  reply.clearCookie(SESSION_COOKIE, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: isSecure(request, settings),
  });
}

export function secureFor(request: FastifyRequest, settings: CookieSettings): boolean {
  return isSecure(request, settings);
}
