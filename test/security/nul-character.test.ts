/**
 * The character U+0000 in any field: PostgreSQL refuses it in text, and a request holding one
 * answered 500 there (sign-in, register, the console's filters, a saved view that then failed
 * every time it was opened). It is refused with a 400 naming the field, on every store, and
 * nothing is stored. Emails also refuse control and invisible characters, with which a new
 * account could read exactly as an existing one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeApp, storeKindsToRun, type TestApp } from '../support/app.js';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`U+0000 and invisible characters (${kind})`, () => {
    let t: TestApp;
    let root: Client;

    beforeAll(async () => {
      t = await makeApp(kind);
      await t.createUser('root@example.test', 'superuser');
      root = t.client();
      await root.login('root@example.test');
    });
    afterAll(async () => t?.close());

    const refused = (
      res: {
        statusCode: number;
        json(): { error: { code: string; message: string; details?: { field?: string } } };
      },
      field: string,
    ) => {
      expect(res.statusCode, field).toBe(400);
      const { error } = res.json();
      expect(error.code).toBe('WARDEN_VALIDATION');
      expect(error.message).toBe(`Invalid request: ${field} must not contain the character U+0000`);
      expect(error.details?.field).toBe(field);
    };

    it('should refuse it in a sign-in and a registration, for anyone, with a 400', async () => {
      const c = t.client();
      refused(
        await c.postJson('/api/auth/login', { email: 'root@example.test\u0000', password: 'x' }),
        'email',
      );
      refused(
        await c.postJson('/api/auth/register', {
          email: 'nul@example.test\u0000',
          password: 'Good-Password-99',
        }),
        'email',
      );
      const form = await c.postForm('/login', { email: 'root@example.test\u0000', password: 'x' });
      expect(form.statusCode).toBe(400);
      expect(form.body).toContain('must not contain the character U+0000');
    });

    it('should find it at any depth, and answer a body nested a hundred thousand deep with a 400', async () => {
      // With a good token: the CSRF check comes before any check of the body.
      const c = t.client();
      const token = await c.csrf();
      const login = (payload: string) =>
        t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          headers: {
            'content-type': 'application/json',
            cookie: c.cookieHeader(),
            'x-csrf-token': token,
          },
          payload,
        });
      const open = '['.repeat(100_000);
      const close = ']'.repeat(100_000);
      const nul = await login(`{"email":${open}"x\\u0000"${close}}`);
      expect(nul.statusCode, nul.body).toBe(400);
      // The field named as deep as anyone reads, not 200 KB of it.
      expect(nul.json().error.details.field).toBe(`${`email${'.0'.repeat(100)}`.slice(0, 100)}…`);
      const plain = await login(`{"email":${open}${close}}`);
      expect(plain.statusCode, plain.body).toBe(400);
    });

    it('should name the address, not a parameter called *, when the path holds one', async () => {
      const res = await root.get('/static/a%00b.css', 'json');
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({
        message: 'Invalid request: the address must not contain the character U+0000',
        details: { field: 'the address', where: 'params' },
      });
    });

    it('should refuse half of a surrogate pair, which the two databases would store differently', async () => {
      const view = await root.postJson('/admin/saved-views', {
        page: 'sessions',
        name: 'half \ud800 a pair',
        query: '',
      });
      expect(view.statusCode).toBe(400);
      expect(view.json().error).toMatchObject({
        message:
          'Invalid request: name must be valid Unicode text (it holds half of a surrogate pair)',
        details: { field: 'name' },
      });
      // A whole pair (an emoji) is text like any other.
      const whole = await root.postJson('/admin/saved-views', {
        page: 'sessions',
        name: 'rockets \ud83d\ude80',
        query: '',
      });
      expect(whole.statusCode, whole.body).toBe(201);
    });

    it("should refuse it in the console's filters, and not save a view that holds one", async () => {
      for (const [url, field] of [
        ['/admin/users?email=%00', 'email'],
        ['/admin/sessions?email=a%00b', 'email'],
        ['/admin/sessions/ended?email=%00', 'email'],
        ['/admin/audit?actor=%00', 'actor'],
        ['/admin/audit?action=x%00', 'action'],
        ['/admin/sessions/export.csv?email=%00', 'email'],
      ] as const) {
        const res = await root.get(url, 'json');
        refused(res, field);
        // The part of the request named as a schema's refusal names it.
        expect(res.json().error.details.where, url).toBe('querystring');
      }
      const saved = await root.postJson('/admin/saved-views', {
        page: 'sessions',
        name: 'with a NUL',
        query: 'email=a%00b',
      });
      refused(saved, 'query.email');
      const views = (await root.get('/admin/saved-views?page=sessions', 'json')).json();
      expect(JSON.stringify(views)).not.toContain('with a NUL');
    });

    it('should refuse an email with a control or invisible character, which would read as another', async () => {
      const c = t.client();
      // Formats and controls, then characters that render as nothing though they are neither
      // (a combining grapheme joiner, a Hangul filler, a variation selector, the blank braille
      // pattern) and a private-use character. (Half of a surrogate pair is refused in any field.)
      const invisible = ['\u200b', '\u0007', '\u202e', '\u2066', '\u00ad'];
      invisible.push('\u034f', '\u3164', '\ufe0f', '\u2800', '\ue000');
      for (const odd of invisible) {
        const res = await c.postJson('/api/auth/register', {
          email: `ro${odd}ot@example.test`,
          password: 'Good-Password-99',
        });
        expect(res.statusCode, JSON.stringify(odd)).toBe(400);
        expect(res.json().error.message).toBe(
          'Invalid request: email must not contain control or invisible characters',
        );
      }
      const users = (await root.get('/admin/users?email=root@example.test', 'json')).json();
      expect(users.items).toHaveLength(1);
    });

    it('should refuse an email that reads as another: look-alike letters, other dots, a final dot', async () => {
      const c = t.client();
      const register = (email: string) =>
        c.postJson('/api/auth/register', { email, password: 'Good-Password-99' });
      // A Cyrillic а, a Greek ο in the domain, and the same domain written with a final dot.
      for (const [email, words] of [
        ['\u0430dmin@example.test', 'mixes letters of different alphabets'],
        ['admin@ex\u03bfmple.test', 'mixes letters of different alphabets'],
        ['admin@example.test.', 'its domain has an empty part'],
        ['admin@example..test', 'its domain has an empty part'],
        // Written wholly in look-alike letters: ceo@, apple.
        ['\u0441\u0435\u043e@example.test', 'reads as "ceo" in Latin letters'],
        ['admin@\u0430\u0440\u0440\u04cf\u0435.test', 'reads as "apple" in Latin letters'],
        // Phonetic and fullwidth letters, and dots that are not ".".
        ['admin@\u0261oogle.test', 'letters written in another form'],
        ['\uff41dmin@example.test', 'letters written in another form'],
        ['admin@example.test\uff0e', 'letters written in another form'],
        ['admin@mail\u3002example.test', 'must use "." for its dots'],
        ['john\u0660doe@example.test', 'must use "." for its dots'],
        ['user@paypal\u00b7com.evil.test', 'must use "." for its dots'],
        // Look-alikes in capitals, and Armenian beside Latin.
        ['\u03a4\u039f\u039c@example.test', 'reads as "TOM" in Latin letters'],
        ['user@\u0412\u041c\u051c.test', 'reads as "BMW" in Latin letters'],
        ['supp\u0585rt@example.test', 'mixes letters of different alphabets'],
      ]) {
        const res = await register(email as string);
        expect(res.statusCode, email).toBe(400);
        expect(res.json().error.message, email).toContain(words);
      }
      // One alphabet to a part is an address like any other, and so are the letters of real
      // orthographies: Azerbaijani ə, Akan ɔ, Hausa ɗ, Dutch ĳ, Armenian և, Thai ำ, a Catalan
      // middle dot, and a Cyrillic address whose top-level domain is Cyrillic too.
      for (const email of [
        '\u0438\u0432\u0430\u043d@example.test',
        '\u00e9lodie@exampl\u00e9.test',
        '\u0259l\u0259kb\u0259r@example.test',
        'k\u0254fi@example.test',
        '\u0257an@example.test',
        '\u0133sbrand@example.test',
        '\u0535\u0580\u0587\u0561\u0576@example.test',
        '\u0e19\u0e49\u0e33@example.test',
        'col\u00b7legi@example.test',
        '\u0438\u0432\u0430\u043d@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0443\u0441',
      ]) {
        expect((await register(email)).statusCode, email).toBe(201);
      }
    });
  });
}
