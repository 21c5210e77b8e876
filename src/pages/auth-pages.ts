/**
 * @module pages/auth-pages
 * The pages everyone sees: sign in, register, sign out and the signed-in home page.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { WardenError } from '../errors.js';
import { actorOf } from '../http/auth.js';
import { setFlash } from '../http/flash.js';
import { logAnswer, RETRY_AFTER_S } from '../http/respond.js';
import { SIGN_IN_LIMITS, safeNext, signInRequest, signOutRequest } from '../http/sign-in.js';
import { MIN_PASSWORD_LENGTH } from '../users/passwords.js';
import { homeView, loginView, registeredView, registerView } from '../views/auth-views.js';

// Lenient on purpose: a missing or over-long field is told on the form itself, which keeps what
// was typed, rather than on an error page (the body limit bounds every field).
const CredentialsForm = Type.Object({
  email: Type.String({ default: '' }),
  password: Type.String({ default: '' }),
  next: Type.Optional(Type.String({ maxLength: 2048 })),
  _csrf: Type.Optional(Type.String({ maxLength: 512 })),
});

/** What is wrong with a sign-in form before any password is checked, or null. */
function signInFormProblem(email: string, password: string): string | null {
  if (email.trim() === '' || password === '') return 'Enter your email and your password.';
  for (const [field, value] of [
    ['email', email],
    ['password', password],
  ] as const) {
    if (value.length > SIGN_IN_LIMITS[field]) {
      return `The ${field} must be at most ${SIGN_IN_LIMITS[field]} characters.`;
    }
  }
  return null;
}

/** A form that carries nothing but its CSRF token. */
const FormOnly = Type.Optional(
  Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 512 })) }),
);

/** An error as a form shows it, beside its fields: without the API's "Invalid request:". */
function onForm(err: WardenError): string {
  return err.code === 'WARDEN_VALIDATION' ? String(err.params[0]) : err.message;
}

export const authPages: FastifyPluginAsyncTypebox = async (app) => {
  const { csrf, users } = app.warden;
  const needsSuperuser = async () => (await users.repo.countSuperusers()) === 0;

  /** The CSRF problem of a form post, audited with its reason, or null when it passes. */
  async function csrfRefused(request: FastifyRequest): Promise<string | null> {
    const problem = csrf.problem(request);
    if (!problem) return null;
    await app.warden.audit.write(
      actorOf(request),
      {
        action: 'csrf.refused',
        target: `${request.method} ${request.routeOptions.url ?? request.url}`,
        outcome: 'refused',
        details: { reason: problem },
      },
      request.log,
    );
    return problem;
  }

  app.get('/', async (request, reply) => {
    if (!request.auth) {
      if (request.storeDown) throw new WardenError('WARDEN_STORE_UNAVAILABLE');
      return reply.redirect('/login', 303);
    }
    const { user, session } = request.auth;
    return reply.page({
      title: 'Home',
      nav: 'home',
      body: homeView({
        email: user.email,
        role: user.role,
        session,
        now: app.warden.clock(),
        isSuperuser: user.role === 'superuser',
      }),
    });
  });

  app.get(
    '/login',
    {
      schema: {
        querystring: Type.Object({ next: Type.Optional(Type.String({ maxLength: 2048 })) }),
      },
    },
    async (request, reply) => {
      if (request.auth) return reply.redirect(safeNext(request.query.next), 303);
      return reply.page({
        title: 'Sign in',
        nav: 'login',
        body: loginView({
          csrfToken: reply.csrfToken(),
          next: request.query.next,
          needsSuperuser: await needsSuperuser(),
        }),
      });
    },
  );

  app.post('/login', { schema: { body: CredentialsForm } }, async (request, reply) => {
    const { email, password, next } = request.body;
    const again = async (status: number, error: string | null, notice: string | null = null) =>
      reply.code(status).page({
        title: 'Sign in',
        nav: 'login',
        body: loginView({
          csrfToken: reply.csrfToken(),
          email,
          next,
          error,
          notice,
          needsSuperuser: await needsSuperuser(),
        }),
      });

    // A form left open too long: say so and hand out a fresh one, not a bare 403.
    if (await csrfRefused(request)) {
      return again(403, null, 'This form expired. Please sign in again.');
    }
    const problem = signInFormProblem(email, password);
    if (problem) return again(400, problem);

    try {
      await signInRequest(request, reply, email, password);
    } catch (err) {
      if (err instanceof WardenError && err.status < 500) return again(err.status, onForm(err));
      // A store away: the form again, with what was typed, to send once it is back.
      if (err instanceof WardenError && err.status === 503) {
        logAnswer(request, err);
        reply.header('retry-after', String(RETRY_AFTER_S));
        return again(503, `${err.message}. Try again in a few seconds.`);
      }
      throw err;
    }
    return reply.redirect(safeNext(next), 303);
  });

  app.get('/register', async (request, reply) => {
    if (request.auth) return reply.redirect('/', 303);
    return reply.page({
      title: 'Register',
      nav: 'register',
      body: registerView({ csrfToken: reply.csrfToken(), minPasswordLength: MIN_PASSWORD_LENGTH }),
    });
  });

  app.post('/register', { schema: { body: CredentialsForm } }, async (request, reply) => {
    const { email, password } = request.body;
    const again = (status: number, error: string) =>
      reply.code(status).page({
        title: 'Register',
        nav: 'register',
        body: registerView({
          csrfToken: reply.csrfToken(),
          email,
          error,
          minPasswordLength: MIN_PASSWORD_LENGTH,
        }),
      });

    if (await csrfRefused(request)) return again(403, 'This form expired. Please try again.');
    try {
      await users.register({ email, password });
    } catch (err) {
      if (err instanceof WardenError && err.status < 500) return again(err.status, onForm(err));
      throw err;
    }
    return reply.page({ title: 'Registered', body: registeredView(email) });
  });

  app.post('/logout', { schema: { body: FormOnly } }, async (request, reply) => {
    // Signing out of a session that already ended is not an attack worth a 403 page:
    // there is nothing left to end, so say so and show the sign-in form.
    if (!request.auth) {
      if (request.storeDown) throw new WardenError('WARDEN_STORE_UNAVAILABLE');
      setFlash(reply, {
        kind: 'info',
        message: 'Your session had already ended. Please sign in again.',
      });
      return reply.redirect('/login', 303);
    }
    const problem = await csrfRefused(request);
    if (problem) throw new WardenError('WARDEN_CSRF_INVALID', [problem], { reason: problem });

    await signOutRequest(request, reply);
    setFlash(reply, { kind: 'success', message: 'You are signed out.' });
    return reply.redirect('/login', 303);
  });
};
