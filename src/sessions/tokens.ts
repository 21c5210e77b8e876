/**
 * @module sessions/tokens
 * The cookie carries a random 256-bit token; everything else, the store included,
 * knows the session only by the token's SHA-256 digest.
 */
import { createHash, hash, randomBytes } from 'node:crypto';

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const SESSION_ID_RE = /^[0-9a-f]{64}$/;

/** A new token: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The session id for a token: SHA-256, lowercase hex. */
export function sessionIdOf(token: string): string {
  // Every validation pays for this: the one-shot digest (Node 20.12) skips the Hash object,
  // about a third of the cost. createHash stays for older Node 20 releases.
  return typeof hash === 'function'
    ? hash('sha256', token, 'hex')
    : createHash('sha256').update(token).digest('hex');
}

/** True when a cookie value could be a token Warden issued (cheap check before any store call). */
export function isWellFormedToken(value: string): boolean {
  return TOKEN_RE.test(value);
}

/** True when a string has the shape of a session id (64 hex digits). */
export function isSessionId(value: string): boolean {
  return SESSION_ID_RE.test(value);
}
