/**
 * @module http/sign-in
 * Sign-in and sign-out as both the form pages and the JSON API perform them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UserRow } from '../db/schema.js';
import { logAuthEvent } from '../events/log-lines.js';
import type { SessionRecord } from '../sessions/session-store.js';
import { isEmailShaped } from '../users/email.js';
import { clientIp } from './client-ip.js';
import { clearSessionCookie, SESSION_COOKIE, setSessionCookie } from './cookies.js';
import { toWardenError } from './respond.js';

/** What a failed sign-in's log line holds in place of text that is no email address. */
export const NOT_AN_EMAIL = '(not an email address)';

/**
 * Checks credentials and starts a new session, setting its cookie. Throws a coded
 * error for bad credentials or an unapproved account, and 429 once this IP or this
 * account has used up its attempts; the redirect or answer that follows is sent only
 * after the session is stored. The token is always new: a session the browser carried
 * before (planted or its own) is ended, so no value from before sign-in authenticates after.
 */
export async function signInRequest(
  request: FastifyRequest,
  reply: FastifyReply,
  email: string,
  password: string,
): Promise<{ user: UserRow; session: SessionRecord }> {
  const { users, sessions, config, clock, metrics, attempts, stepUps } = request.server.warden;
  const failed = (err: unknown, userId?: number) => {
    const code = toWardenError(err).code;
    // Only an address is logged: what was typed in the email box may be the password.
    const logged = isEmailShaped(email) ? email : NOT_AN_EMAIL;
    logAuthEvent(request.log, { event: 'sign_in_failed', email: logged, userId, reason: code });
    metrics.signInFailed(code);
    return err;
  };

  let user: UserRow;
  try {
    // Only a wrong password (or an unknown email) uses up an attempt.
    user = await attempts.check(request, reply, email, () =>
      users.verifyCredentials(email, password),
    );
  } catch (err) {
    throw failed(err);
  }

  let started: Awaited<ReturnType<typeof sessions.signIn>>;
  try {
    started = await sessions.signIn(user, {
      ip: clientIp(request),
      userAgent: headerText(request.headers['user-agent'] ?? ''),
    });
  } catch (err) {
    // A session limit that refuses, or a store that cannot answer, is a failed sign-in too.
    throw failed(err, user.id);
  }
  const { token, session } = started;
  setSessionCookie(request, reply, token, session, clock(), { secure: config.cookieSecure });
  // Entering the password at sign-in counts for step-up (http/step-up.ts).
  if (user.role === 'superuser') await stepUps.record(session.id);
  await endPreviousSession(request);
  logAuthEvent(request.log, { event: 'sign_in', userId: user.id, sessionId: session.id });
  return { user, session };
}

/**
 * The session the browser signed in from, if it still had one: it ends, so a token known
 * before sign-in (a planted cookie, or one read off this browser earlier) is worth nothing.
 */
async function endPreviousSession(request: FastifyRequest): Promise<void> {
  const previous = request.auth;
  if (!previous) return;
  await request.server.warden.sessions.signOut(request.cookies[SESSION_COOKIE]);
  logAuthEvent(request.log, {
    event: 'sign_out',
    userId: previous.user.id,
    sessionId: previous.session.id,
    reason: 'signed_in_again',
  });
}

/** Ends the request's session (if any) and clears the cookie; says whether one ended. */
export async function signOutRequest(
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<boolean> {
  const { sessions, config } = request.server.warden;
  const ended = await sessions.signOut(request.cookies[SESSION_COOKIE]);
  clearSessionCookie(request, reply, { secure: config.cookieSecure });
  if (ended && request.auth) {
    logAuthEvent(request.log, {
      event: 'sign_out',
      userId: request.auth.user.id,
      sessionId: request.auth.session.id,
    });
  }
  return ended;
}

/** The longest email and password a sign-in reads, through the API and the form alike. */
export const SIGN_IN_LIMITS = { email: 320, password: 1024 } as const;

// An origin no request can have: a `next` that a browser would resolve anywhere else is refused.
const HERE = 'http://warden.invalid';

/**
 * A post-sign-in destination on this site only (no `//host` or absolute URLs). Browsers drop
 * tabs and newlines from a URL and read a backslash as `/`, so `/<TAB>/evil.example` is
 * `//evil.example` to them: any control character or backslash is refused, and what is left must
 * resolve to this site's own origin.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//')) return '/';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (next.includes('\\') || /[\u0000-\u001f\u007f]/.test(next)) return '/';
  let url: URL;
  try {
    url = new URL(next, HERE);
  } catch {
    return '/';
  }
  if (url.origin !== HERE) return '/';
  // As the URL parser writes it: percent-encoded, so a `Location` header can carry it (a
  // character past U+00FF there threw, a 500 after the password was accepted).
  return `${url.pathname}${url.search}${url.hash}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A header's text as the client sent it. Node reads header bytes as latin1, so UTF-8 in a user
 * agent (non-ASCII product names and comments exist) arrived as mojibake ("cafÃ©"): it is
 * decoded when the bytes are valid UTF-8, and kept as read otherwise.
 */
export function headerText(value: string): string {
  // Plain ASCII reads the same either way; anything past latin1 did not come from bytes.
  if (!/[\u0080-\u00ff]/.test(value) || /[\u0100-\uffff]/.test(value)) return value;
  try {
    return utf8.decode(Buffer.from(value, 'latin1'));
  } catch {
    return value;
  }
}
