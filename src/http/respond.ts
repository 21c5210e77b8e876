/**
 * @module http/respond
 * One place that decides between JSON and HTML, and turns any error into a clear
 * answer: a coded JSON body or a friendly page. Never a stack trace.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RouteOptions,
} from 'fastify';
import { type ErrorBody, type ErrorCode, reasonOf, WardenError } from '../errors.js';
import { DatabaseUnavailableError } from '../resilience/guarded-database.js';
import { StoreUnavailableError } from '../resilience/guarded-store.js';
import { html, type SafeHtml, showDirectionControls } from '../views/html.js';
import { type Flash, page } from '../views/layout.js';
import { setFlash } from './flash.js';
import { INTEGER_PROBLEM } from './plain-integers.js';
import { checkFirst } from './route-checks.js';
import { API_HEADERS, headersFor } from './security-headers.js';
import { safeNext } from './sign-in.js';

/** Whether the request's body is JSON: media types are case-insensitive. */
export function sentJson(request: FastifyRequest): boolean {
  const type = request.headers['content-type'];
  return typeof type === 'string' && type.split(';')[0].trim().toLowerCase() === 'application/json';
}

/** JSON for the API, for `Accept: application/json` and for JSON bodies; HTML otherwise. */
export function wantsJson(request: FastifyRequest): boolean {
  if (request.url.startsWith('/api/')) return true;
  const accept = (request.headers.accept ?? '').toLowerCase();
  if (accept.includes('application/json') && !accept.includes('text/html')) return true;
  return sentJson(request);
}

/** The largest request body Fastify reads (its `bodyLimit`). */
export const BODY_LIMIT_BYTES = 256 * 1024;

/** Seconds a client should wait before retrying while a store is down (Retry-After of a 503). */
export const RETRY_AFTER_S = 5;

const DB_DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  '57P01',
  '57P03',
  '08006',
  '08001',
]);

/** Maps any thrown value to a catalogue error; `contentType` is the request's, for a 415. */
export function toWardenError(err: unknown, contentType?: string): WardenError {
  if (err instanceof WardenError) return err;
  if (err instanceof StoreUnavailableError) {
    const details = err.counts ? { counts: err.counts } : undefined;
    return new WardenError('WARDEN_STORE_UNAVAILABLE', [], details, { cause: err });
  }
  if (err instanceof DatabaseUnavailableError) {
    return new WardenError('WARDEN_DATABASE_UNAVAILABLE', [], undefined, { cause: err });
  }
  const e = err as FastifyError & { code?: string };
  if (e?.validation) {
    const first = e.validation[0];
    const field =
      (first?.instancePath || '').replace(/^\//, '').replace(/\//g, '.') ||
      (first?.params as { missingProperty?: string })?.missingProperty ||
      e.validationContext;
    return new WardenError('WARDEN_VALIDATION', [`${field} ${problemOf(e.validation)}`], {
      field,
      where: e.validationContext,
    });
  }
  if (e?.code && DB_DOWN_CODES.has(e.code)) {
    return new WardenError('WARDEN_DATABASE_UNAVAILABLE', [], undefined, { cause: err });
  }
  if (e?.statusCode === 413) {
    return new WardenError('WARDEN_BODY_TOO_LARGE', [String(BODY_LIMIT_BYTES / 1024)]);
  }
  if (e?.statusCode === 415) {
    return new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE', [mediaTypeOf(contentType)]);
  }
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new WardenError('WARDEN_VALIDATION', [e.message]);
  }
  return new WardenError('WARDEN_INTERNAL', [], undefined, { cause: err });
}

type SchemaProblem = NonNullable<FastifyError['validation']>[number];

/**
 * What is wrong with a field, in words: Ajv's own message, except that a missing field is
 * "required" and a field with a fixed set of values lists them (a union of literals fails once
 * per literal, so every failure at the same place contributes its value).
 */
export function problemOf(problems: readonly SchemaProblem[]): string {
  const first = problems[0];
  if (!first) return 'is invalid';
  if (first.keyword === 'required') return 'is required';
  if (first.keyword === 'type' && first.instancePath === '' && first.params.type === 'object') {
    return 'must be a JSON object or a form';
  }
  const here = problems.filter((p) => p.instancePath === first.instancePath);
  const choice = (p: SchemaProblem) => p.keyword === 'const' || p.keyword === 'enum';
  // A choice among words, whether the first problem is the choice or the value's type: a query
  // field given twice arrives as a list, which no word matches.
  const words = here.every(
    (p) =>
      choice(p) || p.keyword === 'anyOf' || (p.keyword === 'type' && p.params.type === 'string'),
  );
  if (choice(first) || (words && here.some(choice))) {
    const allowed = here.flatMap((p) =>
      p.keyword === 'const'
        ? [p.params.allowedValue]
        : p.keyword === 'enum'
          ? (p.params.allowedValues as unknown[])
          : [],
    );
    // An empty value means "no filter" where it is allowed; it is no choice worth listing.
    const listed = [...new Set(allowed)].filter((v) => v !== '');
    return `must be one of: ${listed.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  // A union (a form's text or a JSON number, say) failed every branch. Its description says
  // what the field takes, where it has one; else each branch says why ("must be string, or
  // must be null" tells a person little).
  const union = problems.find(
    (p) => p.keyword === 'anyOf' && p.instancePath === first.instancePath,
  );
  // Ajv's verbose errors carry the schema they failed; Fastify's type leaves it out.
  const parent = (union as { parentSchema?: { description?: unknown } } | undefined)?.parentSchema;
  const described = parent?.description;
  if (typeof described === 'string') return described;
  if (union) {
    const why = problems
      .filter((p) => p.keyword !== 'anyOf' && p.instancePath === first.instancePath)
      .map(wordsOf);
    return [...new Set(why)].join(', or ');
  }
  return wordsOf(first);
}

/** One problem in the words the rest of Warden uses, where Ajv's are a regular expression or
 * "must NOT have more than 254 characters". */
function wordsOf(p: SchemaProblem): string {
  if (p.keyword === 'pattern') {
    return PATTERN_WORDS[String(p.params.pattern)] ?? 'is not in the expected form';
  }
  if (p.keyword === 'type' && p.params.type === 'integer') return INTEGER_PROBLEM;
  if (p.keyword === 'maxLength') return `must be at most ${p.params.limit} characters`;
  if (p.keyword === 'minLength') {
    return p.params.limit === 1
      ? 'must not be empty'
      : `must be at least ${p.params.limit} characters`;
  }
  return p.message ?? 'is invalid';
}

// The schemas' patterns in words: a regular expression tells a person little.
const PATTERN_WORDS: Record<string, string> = {
  '^(\\d{4}-\\d{2}-\\d{2})?$': 'must be a date written YYYY-MM-DD',
  '^[0-9a-f]{64}$': 'must be a session id (64 lowercase hex digits)',
};

/** The path and query of a Referer on this same host, or undefined. */
function sameSitePath(referer: string | undefined, host: string | undefined): string | undefined {
  if (!referer || !host) return undefined;
  try {
    const url = new URL(referer);
    // The Host header as the URL would write it (a default port left off).
    const ours = new URL(`${url.protocol}//${host}`).host;
    return url.host === ours ? `${url.pathname}${url.search}` : undefined;
  } catch {
    return undefined;
  }
}

/** The refused media type as the client sent it (parameters left off), or a stand-in. */
function mediaTypeOf(contentType: string | undefined): string {
  const named = contentType?.split(';')[0]?.trim();
  return named ? named.slice(0, 100) : 'this content type';
}

export function errorBody(err: WardenError): ErrorBody {
  return {
    error: {
      code: err.code as ErrorCode,
      message: err.message,
      ...(err.details ? { details: err.details } : {}),
    },
  };
}

const TITLES: Record<number, string> = {
  400: 'That request was not right',
  405: 'Not the way to ask for this page',
  401: 'Sign in first',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Already exists',
  413: 'That request was too large',
  415: 'That request was not right',
  429: 'Slow down',
  431: 'That request was too large',
  500: 'Something went wrong',
  503: 'Temporarily unavailable',
};

export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  err: WardenError,
): FastifyReply {
  if (err.status === 503) reply.header('retry-after', String(RETRY_AFTER_S));
  reply.code(err.status);
  if (wantsJson(request)) return reply.send(errorBody(err));

  if (err.status === 401) {
    // A form sent from a page whose session lapsed comes back to that page once signed in:
    // the form's own address answers POST only, and a sign-in follows `next` with a GET.
    // Unless that page was itself a form's answer (the password prompt a sensitive action
    // shows at the action's own address), which a GET cannot ask for again.
    let next: string | undefined = request.url;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      next = sameSitePath(request.headers.referer, request.headers.host);
      if (next && !methodsAt(request, next.split('?')[0] ?? '/').has('GET')) next = undefined;
      // Signing in leads back to the page, not to the action: say that it was not done.
      setFlash(reply, {
        kind: 'warning',
        message: 'You were not signed in, so that was not done. Sign in, then do it again.',
      });
    }
    return reply.redirect(next ? `/login?next=${encodeURIComponent(next)}` : '/login', 303);
  }
  // A page (GET) waits for Warden to be ready again and reloads itself (warden.js); a form's
  // answer does not, since reloading it would send the form again.
  const reloads = request.method === 'GET';
  const retry =
    err.status === 503
      ? html`<p><a href="${request.url}"${reloads ? html` data-reload-when-ready` : ''}>Try again</a>
        in a few seconds${reloads ? '; this page reloads by itself once Warden can answer' : ''}.</p>`
      : '';
  // A page refused for its query (a filter, a page number) is one click from working: the
  // route's own path, never the address as sent, so no link here can lead off the site.
  // (A route with parameters, `/admin/users/:userId`, is written with the values the
  // request's were checked to be.)
  const route = err.details?.where === 'params' ? undefined : pathOf(request);
  const refusedQuery = err.status === 400 && request.method === 'GET' && request.url.includes('?');
  const onSite = refusedQuery && route !== undefined;
  // Without the one field the error names, the other filters kept (`?created_from=2026-13-45
  // &role=admin` still shows the admins).
  const field = typeof err.details?.field === 'string' ? err.details.field : undefined;
  const rest = new URLSearchParams(request.url.split('?')[1] ?? '');
  const named = field !== undefined && rest.has(field);
  if (named) rest.delete(field);
  rest.delete('page');
  const others = rest.toString();
  const unfiltered = onSite
    ? html`${
        named && others
          ? html`<p><a href="${route}?${others}">Open this page without ${field}</a></p>`
          : ''
      }<p><a href="${route}">Open this page without its filters</a></p>`
    : '';
  // A form refused for what it carried: back to the page that sent it, when that is a page
  // of this site (the Referer), rather than only to the start page.
  const referer =
    err.status < 500 && request.method !== 'GET' && request.method !== 'HEAD'
      ? sameSitePath(request.headers.referer, request.headers.host)
      : undefined;
  // As a sign-in's next page is checked: `//other.example` is a path of this host's URL too.
  const from = referer === undefined ? undefined : safeNext(referer);
  const back =
    from && from !== '/' && methodsAt(request, from.split('?')[0] ?? '/').has('GET')
      ? html`<p><a href="${from}">Back to the page you came from</a></p>`
      : '';
  return reply.page(errorPage(err, html`${retry}${unfiltered}${back}`));
}

/**
 * The route's path with its parameters' values, when each is plainly one a console route takes
 * (a whole number, a session id); else undefined. A query is refused before the parameters are
 * checked, so `/admin/users/abc?x=1` must not offer `/admin/users/abc`, another refusal.
 */
function pathOf(request: FastifyRequest): string | undefined {
  const route = request.routeOptions.url;
  if (!route) return undefined;
  const params = (request.params ?? {}) as Record<string, unknown>;
  let unfit = false;
  const path = route.replace(/:(\w+)/g, (_, name: string) => {
    const value = String(params[name]);
    if (!/^(?:[1-9]\d{0,9}|[0-9a-f]{64})$/.test(value)) unfit = true;
    return value;
  });
  return unfit || path.includes('*') ? undefined : path;
}

/** An error's page: its title, its message, what may help, and the way back to the start. */
function errorPage(err: WardenError, help: SafeHtml = html``): { title: string; body: SafeHtml } {
  const title = TITLES[err.status] ?? 'Error';
  return {
    title,
    body: html`<div class="py-4">
      <h1 class="h3">${title}</h1>
      <p class="lead" data-error-code="${err.code}">${showDirectionControls(err.message)}</p>
      ${help}
      ${
        // The start page needs the store too: its link would lead to this page again.
        err.status === 503 ? '' : html`<p><a href="/">Back to the start page</a></p>`
      }
    </div>`,
  };
}

// The JSON answers' security headers, as header lines: no hook runs for a request Node refused.
const REFUSED_HEADERS = API_HEADERS.map(([name, value]) => `${name}: ${value}\r\n`).join('');

/**
 * Requests Node refuses before Fastify sees them: a head larger than Node's limit (a very long
 * address or too many cookies) gets the same error shape as every other answer, with its own
 * code, instead of Fastify's bare body; a head that is not HTTP gets a 400.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error, socket: Duplex): void {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let body = '';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
  } else {
    const refused =
      code === 'HPE_HEADER_OVERFLOW'
        ? new WardenError('WARDEN_HEADERS_TOO_LARGE', [String(http.maxHeaderSize / 1024)])
        : new WardenError('WARDEN_VALIDATION', ['the request could not be read as HTTP']);
    status = refused.status;
    body = JSON.stringify(errorBody(refused));
    const ip = (socket as Duplex & { remoteAddress?: string }).remoteAddress;
    // The two lines of any refused request; no method or route could be read.
    this.log.info({ event: 'request', status, ip }, 'request');
    this.log.info(
      { event: 'request_refused', code: refused.code, reason: code, ip },
      'request refused',
    );
  }
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n${REFUSED_HEADERS}` +
        `Content-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/**
 * Addresses the router refuses before any route or hook runs: a path part past maxParamLength
 * (Fastify answered 414 in its own shape) or one that does not decode. The same 400 and error
 * shape as any other bad input. No hook has run, so the security headers are set here, and a
 * browser's page is drawn as for a visitor: who is asking is not known this early.
 */
export function frameworkErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const problem =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? 'a part of the address is too long'
      : 'the address is not valid';
  const refused = new WardenError('WARDEN_VALIDATION', [problem]);
  request.log.info(
    { event: 'request_refused', code: refused.code, reason: error.code },
    'request refused',
  );
  for (const [name, value] of headersFor(request.url)) reply.header(name, value);
  reply.code(refused.status);
  if (wantsJson(request)) {
    reply
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(errorBody(refused)));
    return;
  }
  const { title, body } = errorPage(refused);
  reply
    .header('content-type', 'text/html; charset=utf-8')
    .send(page({ title, body, viewer: null, csrfToken: '', flash: null }).value);
}

/**
 * Where a body the secure parser refused stops being JSON ("at position 12", "it ends too
 * soon"), or undefined when it is valid JSON all the same. Never the parser's own words: they
 * quote the body, which may hold a password, into the answer and the log line.
 */
function syntaxProblem(text: string): string | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (error) {
    const at = /at position (\d+)/.exec(error instanceof Error ? error.message : '');
    if (at) return `at character ${Number(at[1]) + 1}`;
    return /end of JSON input/.test(String(error)) ? 'it ends too soon' : 'it does not parse';
  }
}

/**
 * JSON bodies as Fastify parses them (with its prototype-poisoning checks), except that an
 * empty one is an empty object: clients often post an action without fields (sign out, revoke a
 * user) with a JSON content type and nothing after it, or with no body and no content type at
 * all (`curl -X POST`). A route that needs fields then names the first one missing.
 */
export function installJsonBodies(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.method !== 'GET' && request.method !== 'HEAD') {
      request.body = {};
    }
  });
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, {});
    return parseJson(request, text, (error, value) => {
      if (!error) return done(null, value);
      const where = { field: 'body', where: 'body' };
      const problem = syntaxProblem(text);
      // Valid JSON refused for a key that could reach an object's prototype: say so.
      const refused =
        problem === undefined
          ? 'body must not use the key __proto__ or constructor.prototype'
          : `body is not valid JSON (${problem})`;
      // Refused by refuseUnreadableBody, after the route's CSRF check: a forged request is
      // refused as forged whatever its body, and only a checked one is told what is wrong.
      unreadable.set(request, new WardenError('WARDEN_VALIDATION', [refused], where));
      return done(null, {});
    });
  });
}

const unreadable = new WeakMap<FastifyRequest, WardenError>();

/** Adds to a route (from an onRoute hook) the refusal of a JSON body that did not parse. */
export function checkBodyParsed(route: RouteOptions): void {
  checkFirst(route, async function refuseUnreadableBody(request: FastifyRequest) {
    const err = unreadable.get(request);
    if (err) throw err;
  });
}

/** Installs the error and not-found handlers on an app. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const err = toWardenError(error, request.headers['content-type']);
    logAnswer(request, err, error);
    return sendError(request, reply, err);
  });
  app.setNotFoundHandler(notFound);
}

/**
 * The line that says why a request was answered with `err` (the README's `request_refused` and
 * `request_failed`); `thrown` is what was thrown, when it was not `err` itself.
 */
export function logAnswer(request: FastifyRequest, err: WardenError, thrown: unknown = err): void {
  if (err.status === 503) {
    // A store away: the outage has its own lines (redis_down, the breaker's changes), and an
    // error with a stack for every request during it would bury them. What failed, briefly.
    const cause = err.cause ?? thrown;
    const reason = reasonOf(cause);
    request.log.warn({ event: 'request_failed', code: err.code, reason }, 'request failed');
  } else if (err.status >= 500) {
    request.log.error({ event: 'request_failed', err: thrown, code: err.code }, 'request failed');
  } else {
    request.log.info(
      { event: 'request_refused', code: err.code, reason: err.message },
      'request refused',
    );
  }
}

// Per app (tests run many in one process), built at the first request that needs it, when
// every route is registered.
const routeMethods = new WeakMap<readonly unknown[], (path: string) => Set<string>>();

/** The methods the app's routes answer at a path (none for a path no route matches). */
function methodsAt(request: FastifyRequest, path: string): Set<string> {
  const routes = request.server.routeTable;
  let methods = routeMethods.get(routes);
  if (!methods) {
    methods = methodsOf(routes);
    routeMethods.set(routes, methods);
  }
  return methods(path);
}

/**
 * The not-found handler (of the app, and of scopes that guard theirs): 404, or 405 with `Allow`
 * when the path has routes but none for this method (a 405 rather than a 404, which would say
 * a documented route does not exist).
 */
export function notFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?')[0] ?? '/';
  const found = methodsAt(request, path);
  let err: WardenError;
  if (found.size === 0 || found.has(request.method)) {
    err = new WardenError('WARDEN_NOT_FOUND', [path]);
  } else {
    const methods = [...found].sort().join(', ');
    reply.header('allow', methods);
    err = new WardenError('WARDEN_METHOD_NOT_ALLOWED', [path, request.method, methods]);
  }
  logAnswer(request, err);
  return sendError(request, reply, err);
}

/** A lookup of the methods the routes answer at a path, as Fastify reads a route's path. */
function methodsOf(
  routes: readonly { method: string; url: string }[],
): (path: string) => Set<string> {
  const byPattern = new Map<string, Set<string>>();
  for (const r of routes) {
    const methods = byPattern.get(r.url) ?? new Set<string>();
    methods.add(r.method);
    byPattern.set(r.url, methods);
  }
  const patterns = [...byPattern].map(([url, methods]) => ({
    // `:name` is one segment and `*` the rest, as Fastify reads a route's path.
    match: new RegExp(
      `^${url
        .split('/')
        .map((part) =>
          part.startsWith(':')
            ? '[^/]+'
            : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*'),
        )
        .join('/')}/?$`,
    ),
    methods,
  }));
  return (path) => {
    const found = new Set<string>();
    for (const p of patterns) if (p.match.test(path)) for (const m of p.methods) found.add(m);
    return found;
  };
}

/**
 * Answers a state-changing request: JSON clients get the result, browsers are sent
 * back where they came from with a toast.
 */
export function done(
  request: FastifyRequest,
  reply: FastifyReply,
  opts: { json: unknown; redirectTo: string; flash: Flash; status?: number },
): FastifyReply {
  if (wantsJson(request)) return reply.code(opts.status ?? 200).send(opts.json);
  setFlash(reply, opts.flash);
  return reply.redirect(opts.redirectTo, 303);
}
