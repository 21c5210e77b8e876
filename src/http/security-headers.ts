/**
 * @module http/security-headers
 * The security headers every answer carries, fixed at start-up. @fastify/helmet sent the page
 * set but rebuilt its middleware (and re-parsed the CSP directives) on every request, a few
 * per cent of a session validation's CPU; nothing here varies per request except HSTS.
 *
 * JSON answers under /api/ get the shorter set OWASP recommends for APIs: they are never
 * rendered, so a CSP that allows nothing and forbids framing, nosniff and no-store say all
 * there is to say. That route is called on every request of the services that use Warden,
 * and each header is bytes on every one of those answers.
 */
import type { FastifyInstance } from 'fastify';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // Bootstrap draws its icons (toggler, select arrow) as data: SVG in its CSS.
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join(';');

type HeaderList = ReadonlyArray<readonly [string, string]>;

/** For pages, static files and anything else a browser may render. */
export const PAGE_HEADERS: HeaderList = Object.freeze([
  ['content-security-policy', CSP],
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
  ['origin-agent-cluster', '?1'],
  ['referrer-policy', 'same-origin'],
  ['x-content-type-options', 'nosniff'],
  ['x-dns-prefetch-control', 'off'],
  ['x-download-options', 'noopen'],
  ['x-frame-options', 'DENY'],
  ['x-permitted-cross-domain-policies', 'none'],
  // Turns off the XSS auditor of old browsers, which could itself be abused.
  ['x-xss-protection', '0'],
]);

/** For the JSON API (`/api/…`), answers that are only ever read by code. */
export const API_HEADERS: HeaderList = Object.freeze([
  ['content-security-policy', "default-src 'none';frame-ancestors 'none'"],
  ['cross-origin-resource-policy', 'same-origin'],
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['cache-control', 'no-store'],
]);

export const HSTS = 'max-age=31536000; includeSubDomains';

// Every page depends on who asks: no cache, shared or private, keeps it (nor shows a signed-out
// user the console through the back button). Static files may be cached.
const UNSTORED_PAGE_HEADERS: HeaderList = Object.freeze([
  ...PAGE_HEADERS,
  ['cache-control', 'no-store'] as const,
]);

/** The headers an answer to this address carries, but HSTS (see installSecurityHeaders). */
export function headersFor(url: string): HeaderList {
  if (url.startsWith('/api/')) return API_HEADERS;
  return url.startsWith('/static/') ? PAGE_HEADERS : UNSTORED_PAGE_HEADERS;
}

export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    // On the raw response, as helmet did, so that error and not-found answers keep them.
    const res = reply.raw;
    for (const [name, value] of headersFor(request.url)) res.setHeader(name, value);
    // Only over HTTPS: over plain HTTP the header means nothing to a browser and would pin a
    // development host to HTTPS for a year.
    if (request.protocol === 'https') res.setHeader('strict-transport-security', HSTS);
    done();
  });
}
