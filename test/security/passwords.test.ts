/**
 * Password rules and the person's own password change: a minimum length and a list of common
 * passwords shipped with Warden, checked at registration, at a password change and by
 * `create-superuser`; a change needs the current password, ends every other session of the
 * person (history reason `password_changed`) and keeps the one that made it. A password is the
 * same however its accents were typed (NFKC), and one hashed as typed before still signs in.
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commonPasswords } from '../../src/users/common-passwords.js';
import {
  hashPassword,
  MIN_PASSWORD_LENGTH,
  passwordProblem,
  verifyPassword,
} from '../../src/users/passwords.js';
import { revokedRows, toastAfter, whoamiStatus } from '../routes/helpers.js';
import { makeApp, PASSWORD, storeKindsToRun, type TestApp } from '../support/app.js';
import { useCli } from '../support/cli.js';

const NEW_PASSWORD = 'a fresh and unusual passphrase';

describe('the common-password list', () => {
  it('should hold a few thousand entries, each one the length rule would let through', () => {
    const list = commonPasswords();
    expect(list.size).toBeGreaterThan(3_000);
    for (const entry of list) {
      expect(entry.length).toBeGreaterThanOrEqual(10);
      expect(entry).toBe(entry.toLowerCase());
    }
  });

  it('should refuse common passwords whatever their case, and accept unusual ones', () => {
    for (const common of ['password1234', 'Qwerty123456', 'iloveyou2024', '1234567890']) {
      expect(passwordProblem(common), common).toMatch(/too common/);
    }
    for (const fine of [PASSWORD, NEW_PASSWORD, 'Tr0mbone-Lantern-42']) {
      expect(passwordProblem(fine), fine).toBeNull();
    }
    expect(passwordProblem('short')).toMatch(/at least 10 characters/);
  });
});

// A low cost, as the test fixtures use: the hash says its own parameters.
const N = 1024;
const composed = 'caf\u00e9 au lait 42';
const decomposed = 'cafe\u0301 au lait 42';
const fullWidth = '\uff43\uff41\uff46\u00e9 au lait 42';

/** A hash of the text as typed, as Warden made them before it normalized passwords. */
function legacyHash(text: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(text, salt, 32, { N, r: 8, p: 1 });
  return `scrypt$${N}$8$1$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

describe('one password however it was typed (NFKC)', () => {
  it('should take one password however its accents were typed, composed or combining', async () => {
    expect(composed).not.toBe(decomposed);
    const hash = await hashPassword(composed, { N });
    expect(await verifyPassword(decomposed, hash)).toBe(true);
    expect(await verifyPassword(composed, hash)).toBe(true);
    expect(await verifyPassword(fullWidth, hash)).toBe(true);
    expect(await verifyPassword('cafe au lait 42', hash)).toBe(false);
  });

  it('should still take a password hashed as typed before, in the form it was typed', async () => {
    const hash = legacyHash(decomposed);
    expect(await verifyPassword(decomposed, hash)).toBe(true);
    expect(await verifyPassword('cafe au lait 43', hash)).toBe(false);
  });
});

describe('create-superuser', () => {
  const cli = useCli('warden-security-cli-');

  it('should refuse a common password and create nobody', async () => {
    const res = await cli.run(['create-superuser', '--email', 'root@example.test'], {
      WARDEN_PASSWORD: 'Password123!',
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/password is too common/);
  });
});

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`passwords (${kind})`, () => {
    let t: TestApp;
    let seq = 0;
    const fresh = async () => t.createUser(`person${++seq}@example.test`);

    beforeAll(async () => {
      t = await makeApp(kind);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('should refuse a common or short password at registration, naming the field', async () => {
      for (const password of ['letmein12345', 'tooshort']) {
        const res = await t
          .client()
          .postJson('/api/auth/register', { email: `new${++seq}@example.test`, password });
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({
          code: 'WARDEN_VALIDATION',
          details: { field: 'password' },
        });
      }
      const form = await t
        .client()
        .postForm('/register', { email: 'form@example.test', password: 'football2024' });
      expect(form.statusCode).toBe(400);
      expect(form.body).toContain('password is too common');
    });

    it('should sign in with the password registered, its accent typed as a combining one', async () => {
      const email = `accent${++seq}@example.test`;
      const registered = await t
        .client()
        .postJson('/api/auth/register', { email, password: composed });
      expect(registered.statusCode).toBe(201);
      await t.database.db
        .updateTable('users')
        .set({ status: 'approved' })
        .where('email', '=', email)
        .execute();
      const res = await t.client().postJson('/api/auth/login', { email, password: decomposed });
      expect(res.statusCode, res.body).toBe(200);
    });

    it('should sign in with a password hashed as typed before, then take it however its accents are typed', async () => {
      const email = `legacy${++seq}@example.test`;
      await t.createUser(email);
      // The hash Warden made before it normalized passwords: of the text as typed.
      await t.database.db
        .updateTable('users')
        .set({ password_hash: legacyHash(decomposed) })
        .where('email', '=', email)
        .execute();
      const typed = await t.client().postJson('/api/auth/login', { email, password: decomposed });
      expect(typed.statusCode, typed.body).toBe(200);
      // That sign-in hashed it again, normalized: the other way of typing é signs in too.
      const other = await t.client().postJson('/api/auth/login', { email, password: composed });
      expect(other.statusCode, other.body).toBe(200);
    });

    it('should answer a missing or over-long field on the sign-in and register forms themselves, keeping the email', async () => {
      const email = `typed${++seq}@example.test`;
      const cases: [string, Record<string, string>, number, string][] = [
        ['/login', { email: '', password: '' }, 400, 'Enter your email and your password.'],
        ['/login', { email }, 400, 'Enter your email and your password.'],
        ['/login', { email, password: 'x'.repeat(1_025) }, 400, 'at most 1024 characters'],
        ['/register', { email }, 400, `password must be at least ${MIN_PASSWORD_LENGTH}`],
        ['/register', { email, password: 'y'.repeat(300) }, 400, 'password must be at most 256'],
      ];
      for (const [url, form, status, words] of cases) {
        const res = await t.client().postForm(url, form);
        const what = `${url} ${JSON.stringify(form).slice(0, 60)}`;
        expect(res.statusCode, what).toBe(status);
        expect(res.body, what).toContain(words);
        // The form again, with what was typed, not an error page.
        expect(res.body, what).toContain('name="password"');
        if (form.email) expect(res.body, what).toContain(`value="${email}"`);
      }
      // Through the API the same empty sign-in is the same 400, naming the field.
      const api = await t.client().postJson('/api/auth/login', { email: '', password: '' });
      expect(api.statusCode).toBe(400);
      expect(api.json().error.message).toBe('Invalid request: email must not be empty');
      // Registering with an empty password: the API and the form say the same, the form
      // without the API's prefix.
      const short = `password must be at least ${MIN_PASSWORD_LENGTH} characters`;
      const viaApi = await t.client().postJson('/api/auth/register', { email, password: '' });
      expect(viaApi.json().error.message).toBe(`Invalid request: ${short}`);
      const viaForm = await t.client().postForm('/register', { email, password: '' });
      expect(viaForm.body).toContain(short);
      expect(viaForm.body).not.toContain('Invalid request');
    });

    it('should change the password, end every other session and keep this one', async () => {
      const user = await fresh();
      const me = t.client();
      await me.login(user.email);
      const others = [t.client(), t.client()];
      for (const o of others) await o.login(user.email);

      const res = await me.postJson('/api/auth/password', {
        current_password: PASSWORD,
        new_password: NEW_PASSWORD,
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ changed: true, sessionsEnded: 2, failed: 0 });

      expect(await whoamiStatus(me)).toBe(200);
      for (const o of others) expect(await whoamiStatus(o)).toBe(401);
      const history = (await revokedRows(t, user.id)).map(({ reason, actor_id }) => ({
        reason,
        actor_id,
      }));
      expect(history).toEqual([
        { reason: 'password_changed', actor_id: user.id },
        { reason: 'password_changed', actor_id: user.id },
      ]);

      // The old password opens nothing any more; the new one does.
      const old = await t.client().postJson('/api/auth/login', {
        email: user.email,
        password: PASSWORD,
      });
      expect(old.statusCode).toBe(401);
      await t.client().login(user.email, NEW_PASSWORD);
    });

    it('should change the password through the form, with a toast saying what ended', async () => {
      const user = await fresh();
      const me = t.client();
      await me.login(user.email);
      await t.client().login(user.email);

      const page = await me.get('/me/password', 'html');
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('name="current_password"');
      const res = await me.postForm('/me/password', {
        current_password: PASSWORD,
        new_password: NEW_PASSWORD,
        confirm_password: NEW_PASSWORD,
      });
      expect(await toastAfter(me, res)).toBe('Your password is changed; 1 other session ended.');
    });

    it.each([
      ['a wrong current password', { current_password: 'not it at all' }, 'current_password'],
      ['a common new password', { new_password: 'password2024' }, 'new_password'],
      ['a short new password', { new_password: 'short' }, 'new_password'],
      ['the same password again', { new_password: PASSWORD }, 'new_password'],
    ])(
      'should refuse %s with 400 naming the field and change nothing',
      async (_what, patch, field) => {
        const user = await fresh();
        const me = t.client();
        await me.login(user.email);
        const other = t.client();
        await other.login(user.email);
        const hash = () =>
          t.database.db
            .selectFrom('users')
            .select('password_hash')
            .where('id', '=', user.id)
            .executeTakeFirstOrThrow();
        const before = await hash();

        const body = { current_password: PASSWORD, new_password: NEW_PASSWORD, ...patch };
        const json = await me.postJson('/api/auth/password', body);
        expect(json.statusCode).toBe(400);
        expect(json.json().error).toMatchObject({ code: 'WARDEN_VALIDATION', details: { field } });

        const form = await me.postForm('/me/password', {
          ...body,
          confirm_password: body.new_password,
        });
        expect(form.statusCode).toBe(400);
        expect(form.body).toContain(`id="${field}-error"`);

        expect(await hash()).toEqual(before);
        expect(await whoamiStatus(other)).toBe(200);
      },
    );

    it('should refuse a confirmation that differs, on the form', async () => {
      const user = await fresh();
      const me = t.client();
      await me.login(user.email);
      const res = await me.postForm('/me/password', {
        current_password: PASSWORD,
        new_password: NEW_PASSWORD,
        confirm_password: `${NEW_PASSWORD}!`,
      });
      expect(res.statusCode).toBe(400);
      expect(res.body).toContain('does not match the new password');
    });
  });
}
