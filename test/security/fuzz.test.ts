/**
 * Property-based tests (fast-check) over the route table: random query strings, path
 * parameters and bodies (field names from each route's own schema, and others), as JSON and as
 * forms. Whatever the input: never a 500; a request refused for want of a valid CSRF token or
 * of the right role changes nothing stored; a request a superuser makes that answers 4xx
 * changes nothing either, beyond the audit rows that record a refused or failed attempt.
 * Bounded runs, so the suite takes seconds.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import {
  asForm,
  makeWorld,
  type Route,
  routesOf,
  STATE_CHANGING,
  snapshot,
  urlFor,
  type World,
} from './support.js';

/** FUZZ_RUNS raises it for a longer hunt; the suite's default stays quick. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 120);

/** Values that have broken parsers before: empty, signs, huge, dates that do not exist … */
const tricky = fc.constantFrom(
  '',
  '0',
  '-1',
  '1e9',
  '99999999999999999999',
  'NaN',
  'true',
  'null',
  '[]',
  '{}',
  '2024-02-30',
  '2024-13-01',
  '0000-00-00',
  '%',
  '%25',
  '_',
  '.*',
  '\u0000',
  '../../etc/passwd',
  "<script>alert('x')</script>",
  "' or 1=1 --",
  'é'.normalize('NFD'),
  'a'.repeat(5_000),
);
/** Values some field accepts, so that random requests also get past validation. */
const plausible = fc.constantFrom(
  'sessions',
  'users',
  'user',
  'admin',
  'superuser',
  'active',
  'expired',
  'all',
  'revoked',
  '1',
  '2',
  'on',
  'refuse',
  'evict_oldest',
  '15m',
  '2h',
  'status=active',
  '/admin/users',
  'su@example.test',
  'correct horse battery',
);
const text = fc.oneof(
  tricky,
  plausible,
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.integer().map(String),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
);
const hex64 = fc.string({
  unit: fc.constantFrom(...'0123456789abcdef'),
  minLength: 64,
  maxLength: 64,
});

function fieldsOf(schema: unknown): string[] {
  const s = schema as { properties?: Record<string, unknown>; anyOf?: unknown[] } | undefined;
  if (!s) return [];
  return [...Object.keys(s.properties ?? {}), ...(s.anyOf ?? []).flatMap(fieldsOf)];
}

/** A key: one the route declares, most of the time, or anything. */
function keys(route: Route, part: 'querystring' | 'body') {
  const known = [...new Set(fieldsOf(route.schema[part]))];
  const other = fc.string({ minLength: 1, maxLength: 12 });
  return known.length > 0
    ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, other)
    : other;
}

function queryOf(route: Route) {
  return fc
    .dictionary(keys(route, 'querystring'), text, { maxKeys: 5 })
    .map((q) => new URLSearchParams(q).toString());
}

const bodyValue = fc.oneof(
  text,
  fc.array(fc.oneof(text, hex64), { maxLength: 6 }),
  fc.jsonValue({ maxDepth: 2 }),
  hex64,
  fc.boolean(),
  fc.integer(),
);
function bodyOf(route: Route) {
  return fc.dictionary(keys(route, 'body'), bodyValue, { maxKeys: 6 });
}

/** The route's URL with each path parameter random, or left as the fixture's valid id. */
function pathOf(w: World, route: Route) {
  const params: string[] = route.url.match(/:\w+/g) ?? [];
  return fc
    .array(fc.option(fc.oneof(text, hex64, fc.integer().map(String)), { freq: 3 }), {
      minLength: params.length,
      maxLength: params.length,
    })
    .map((values) => {
      let url = urlFor(w, route).split('?')[0];
      const fixed = url.split('/');
      const pattern = route.url.split('/');
      pattern.forEach((segment, i) => {
        const k = params.indexOf(segment);
        if (k >= 0 && values[k] !== null) fixed[i] = encodeURIComponent(values[k] as string);
      });
      url = fixed.join('/');
      return url;
    });
}

/** What must not change: everything but the audit log, and the audit rows of done actions. */
async function stored(t: TestApp) {
  const snap = await snapshot(t);
  const done = await t.database.db
    .selectFrom('audit_log')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('outcome', 'in', ['success', 'partial'])
    .executeTakeFirstOrThrow();
  // A failed attempt is recorded as such ('failure'); those rows may come with a 4xx.
  return { ...snap, audit: Number(done.n) };
}

function send(
  c: Client,
  method: string,
  url: string,
  body: unknown,
  as: 'json' | 'form',
  token: string | null,
) {
  const headers = token && as === 'json' ? { 'x-csrf-token': token } : undefined;
  if (method === 'GET')
    return c.request({ method: 'GET', url, accept: as === 'json' ? 'json' : 'html' });
  if (as === 'json') return c.request({ method: 'POST', url, json: body, headers });
  const form = asForm(body as Record<string, unknown>);
  return c.request({
    method: 'POST',
    url,
    form: token ? { _csrf: token, ...form } : form,
    accept: 'html',
  });
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`fuzzing the routes (${kind})`, () => {
    let t: TestApp;
    let w: World;
    let gets: Route[];
    let posts: Route[];

    beforeAll(async () => {
      // Random wrong passwords would otherwise lock the fixtures' accounts and this IP out.
      t = await makeApp(kind, {
        env: { SIGN_IN_LIMIT_ACCOUNT: '1000000', SIGN_IN_LIMIT_IP: '1000000' },
      });
      w = await makeWorld(t);
      const routes = routesOf(t).filter((r) => !r.url.startsWith('/static/') && !r.schema.produces);
      gets = routes.filter((r) => r.method === 'GET');
      posts = routes.filter((r) => STATE_CHANGING.has(r.method));
    });
    afterAll(async () => {
      await t?.close();
    });

    /** The superuser signed in again if a random request signed them out. */
    async function stillSignedIn() {
      if ((await w.su.get('/api/auth/session')).statusCode !== 200)
        await w.su.login('su@example.test');
    }

    it('should never answer 500 to a random query on any page, as any of its viewers', async () => {
      const arb = fc
        .constantFrom(...gets)
        .chain((r) =>
          fc.tuple(
            fc.constant(r),
            pathOf(w, r),
            queryOf(r),
            fc.constantFrom<'json' | 'form'>('json', 'form'),
            fc.constantFrom('su', 'user', 'anonymous'),
          ),
        );
      await fc.assert(
        fc.asyncProperty(arb, async ([r, path, query, as, who]) => {
          const c = who === 'su' ? w.su : who === 'user' ? w.user : t.client();
          const url = query ? `${path}?${query}` : path;
          const res = await send(c, 'GET', url, undefined, as, null);
          expect(res.statusCode, `${r.url} → GET ${url}: ${res.body.slice(0, 300)}`).toBeLessThan(
            500,
          );
        }),
        { numRuns: RUNS },
      );
    });

    it('should refuse every state-changing request without a valid token or the right role, and change nothing', async () => {
      const arb = fc
        .constantFrom(...posts)
        .chain((r) =>
          fc.tuple(
            fc.constant(r),
            pathOf(w, r),
            queryOf(r),
            bodyOf(r),
            fc.constantFrom<'json' | 'form'>('json', 'form'),
            fc.constantFrom('no token', 'forged token', 'user with token', 'anonymous with token'),
          ),
        );
      await fc.assert(
        fc.asyncProperty(arb, async ([r, path, query, body, as, how]) => {
          const url = query ? `${path}?${query}` : path;
          const adminOnly = r.url.startsWith('/admin');
          // A user's own token opens the user's own routes: only the console is out of reach.
          if (how === 'user with token' && !adminOnly) return;
          if (how === 'anonymous with token' && !adminOnly && !r.url.startsWith('/me/')) return;
          const c =
            how === 'user with token' ? w.user : how === 'anonymous with token' ? t.client() : w.su;
          const token =
            how === 'no token'
              ? null
              : how === 'forged token'
                ? 'forged-0123456789'
                : await c.csrf();

          const before = await stored(t);
          const res = await send(c, 'POST', url, body, as, token);
          const what = `${how}: POST ${url} ${JSON.stringify(body).slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 200)}`;
          expect(res.statusCode, what).toBeGreaterThanOrEqual(300);
          expect(res.statusCode, what).toBeLessThan(500);
          expect(await stored(t), what).toEqual(before);
          if (how === 'user with token') await stillSignedIn();
        }),
        { numRuns: RUNS },
      );
    });

    it('should never answer 500 to a superuser’s random request with a valid token, and change nothing when it answers 4xx', async () => {
      const arb = fc
        .constantFrom(...posts.filter((r) => !/logout/.test(r.url)))
        .chain((r) =>
          fc.tuple(
            fc.constant(r),
            pathOf(w, r),
            queryOf(r),
            bodyOf(r),
            fc.constantFrom<'json' | 'form'>('json', 'form'),
          ),
        );
      await fc.assert(
        fc.asyncProperty(arb, async ([r, path, query, body, as]) => {
          const url = query ? `${path}?${query}` : path;
          const before = await stored(t);
          const res = await send(w.su, 'POST', url, body, as, await w.su.csrf());
          const what = `${r.url}: POST ${url} ${JSON.stringify(body).slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
          expect(res.statusCode, what).toBeLessThan(500);
          if (res.statusCode >= 400) expect(await stored(t), what).toEqual(before);
          await stillSignedIn();
        }),
        { numRuns: RUNS },
      );
    });
  });
}
