/**
 * @module http/session-fast-path
 * `GET /api/auth/session` answered before Fastify when the answer is a plain 200.
 *
 * Services that use Warden call this route on every request of theirs, so its cost is theirs.
 * Measured under load, Fastify's routing, hook chain, reply and per-request child logger cost
 * about as much as the validation itself. Here the same validation (SessionService.authenticate,
 * the one every route uses) runs on the raw request, and when it says "signed in, nothing to
 * re-issue" the answer is written at once: the same body, the same headers and the same log line
 * as the route would produce (test/routes/session-fast-path.test.ts compares the two).
 *
 * Every other outcome goes on to Fastify with the outcome attached (`preAuthOf`), so the store
 * is asked once: no cookie or a bad one (401), a store that cannot answer (503), a touched
 * session whose cookie must be re-issued, a server that is closing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';
import type { FastifyBaseLogger } from 'fastify';
import { levels } from 'pino';
import type { Authenticated, SessionService } from '../sessions/session-service.js';
import { expiresAt } from '../sessions/session-store.js';
import { canonicalIp } from './client-ip.js';
import { SESSION_COOKIE } from './cookies.js';
import { API_HEADERS, HSTS } from './security-headers.js';

export const SESSION_PATH = '/api/auth/session';

/** What the fast path learned about a request it handed on. */
export type PreAuth = { auth: Authenticated | null } | { error: unknown };

const PRE_AUTH = Symbol('warden.preAuth');
type Tagged = IncomingMessage & { [PRE_AUTH]?: PreAuth };

/** The fast path's verdict on this request, when it handed the request on after asking. */
export function preAuthOf(raw: IncomingMessage): PreAuth | undefined {
  return (raw as Tagged)[PRE_AUTH];
}

/** The answer of `GET /api/auth/session`, one definition for both paths. */
export function whoAmI({ user, session }: Authenticated) {
  return {
    id: user.id,
    email: user.email,
    role: user.role,
    session: {
      id: session.id,
      createdAt: session.createdAt,
      lastSeenAt: session.lastSeenAt,
      expiresAt: expiresAt(session),
      absoluteExpiresAt: session.absoluteExpiresAt,
    },
  };
}

/** The client's address as Fastify's `request.ip` computes it with the same trust. */
export type TrustFn = (addr: string, hop: number) => boolean;

export interface FastPathDeps {
  sessions: SessionService;
  log: FastifyBaseLogger;
  /** The proxy trust Fastify was given, or null when no proxy is trusted. */
  trust: TrustFn | null;
  /** Fastify's request ids, so the line looks like every other request's. */
  genReqId: (req: IncomingMessage) => string;
  /** True once the server is closing: Fastify then answers 503 itself. */
  closing: () => boolean;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

// Flat name/value pairs for writeHead, which then skips setHeader's per-header checks.
const HEADERS: string[] = [
  ...API_HEADERS,
  ['content-type', 'application/json; charset=utf-8'] as const,
].flat();

/**
 * Answers known in memory, written together once the event loop has read every socket that was
 * ready. Written one by one as each request is parsed, every answer woke the load's reader on
 * its own; written back to back, the later ones find it awake. Measured on two cores (a bare
 * `http` server, 50 connections): 7–15% more answers a second for the same CPU, and no worse
 * p99. The wait is the rest of one poll phase, not a timer.
 */
class AnswerBatch {
  #queue: Parameters<typeof respond>[] = [];

  add(...answer: Parameters<typeof respond>): void {
    if (this.#queue.length === 0) setImmediate(this.#flush);
    this.#queue.push(answer);
  }

  #flush = (): void => {
    const queue = this.#queue;
    this.#queue = [];
    for (const answer of queue) respond(...answer);
  };
}

/** Wraps Fastify's request handler with the fast path. */
export function withSessionFastPath(
  fastify: Handler,
  depsOf: () => FastPathDeps | undefined,
): Handler {
  const batch = new AnswerBatch();
  return (req, res) => {
    const deps = depsOf();
    if (!deps || req.method !== 'GET' || req.url !== SESSION_PATH || deps.closing()) {
      return fastify(req, res);
    }
    const token = cookieValue(req.headers.cookie, SESSION_COOKIE);
    // A percent-encoded value is decoded by Fastify's cookie parser: let it.
    if (token === undefined || token.includes('%')) return fastify(req, res);
    const started = performance.now();
    // Known in memory: decided in this turn, without a promise or a closure.
    const known = deps.sessions.authenticateFromMemory(token);
    if (known) return batch.add(deps, req, res, known, started);
    if (known === null) return handOn(req, res, fastify, { auth: null });
    deps.sessions.authenticate(token).then(
      (auth) =>
        auth && !auth.touched
          ? respond(deps, req, res, auth, started)
          : handOn(req, res, fastify, { auth }),
      (error: unknown) => handOn(req, res, fastify, { error }),
    );
  };
}

/** Lets Fastify answer, with what the fast path learned so the store is not asked again. */
function handOn(req: IncomingMessage, res: ServerResponse, fastify: Handler, pre: PreAuth): void {
  (req as Tagged)[PRE_AUTH] = pre;
  fastify(req, res);
}

function respond(
  deps: FastPathDeps,
  req: IncomingMessage,
  res: ServerResponse,
  auth: Authenticated,
  started: number,
): void {
  const { headers, body } = answerOf(auth, overHttps(req, deps.trust));
  res.writeHead(200, headers);
  res.end(body);
  logAnswer(deps, req, auth.user.id, started);
}

// The answer for a session and user as last given: both are the same objects for as long as
// neither changes (records from memory are shared and frozen), so their JSON and headers are.
interface Answer {
  user: object;
  body: string;
  headers: string[];
  /** The same headers with HSTS, for requests that came over HTTPS. */
  secureHeaders: string[];
}
const answers = new WeakMap<object, Answer>();

function answerOf(auth: Authenticated, https: boolean): { headers: string[]; body: string } {
  let answer = answers.get(auth.session);
  if (answer?.user !== auth.user) {
    const body = JSON.stringify(whoAmI(auth));
    const headers = [...HEADERS, 'content-length', String(Buffer.byteLength(body))];
    answer = {
      user: auth.user,
      body,
      headers,
      secureHeaders: [...headers, 'strict-transport-security', HSTS],
    };
    if (Object.isFrozen(auth.session)) answers.set(auth.session, answer);
  }
  return { headers: https ? answer.secureHeaders : answer.headers, body: answer.body };
}

function logAnswer(deps: FastPathDeps, req: IncomingMessage, userId: number, started: number) {
  // As WardenLogController writes it; skipped (not even built) when info is off.
  if (levels.values.info < (levels.values[deps.log.level] ?? 0)) return;
  const ip = canonicalIp(
    (deps.trust ? proxyAddr(req, deps.trust) : req.socket.remoteAddress) ?? '',
  );
  deps.log.info(
    {
      reqId: deps.genReqId(req),
      event: 'request',
      method: 'GET',
      route: SESSION_PATH,
      url: SESSION_PATH,
      status: 200,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      userId,
      ip,
    },
    'request',
  );
}

/** As Fastify's `request.protocol` reads it: a trusted proxy's X-Forwarded-Proto, else TLS. */
function overHttps(req: IncomingMessage, trust: TrustFn | null): boolean {
  const header = req.headers['x-forwarded-proto'];
  const forwarded = Array.isArray(header) ? header.join(',') : header;
  if (forwarded && trust && req.socket.remoteAddress && trust(req.socket.remoteAddress, 0)) {
    return forwarded.slice(forwarded.lastIndexOf(',') + 1).trim() === 'https';
  }
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

/**
 * One cookie's value from a Cookie header, as @fastify/cookie reads it for a token (which is
 * base64url: nothing to decode). The first occurrence wins, as there.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let at = 0;
  while (at < header.length) {
    const eq = header.indexOf('=', at);
    if (eq === -1) return undefined;
    let end = header.indexOf(';', at);
    if (end === -1) end = header.length;
    if (eq < end && header.slice(at, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
        value = value.slice(1, -1);
      }
      return value;
    }
    at = end + 1;
  }
  return undefined;
}
