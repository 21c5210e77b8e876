/**
 * @module http/step-up
 * Step-up: the console actions that end many sessions at once, clean up, repair or make
 * someone a superuser ask the superuser for their password again, unless this session
 * proved it within the step-up window (STEP_UP_WINDOW). Signing in proves it too, so a
 * superuser who just signed in is not asked twice.
 *
 * When it was last proved is a row of `step_ups` keyed by the session's digest, so every
 * instance agrees. A browser gets a page that asks for the password and re-submits the
 * same form (its fields as hidden inputs, the password as `step_up_password`) to the same
 * route; a JSON client gets 403 WARDEN_STEP_UP_REQUIRED and calls `POST /api/auth/step-up`.
 * Refusals, and every password entered for it, are audit rows.
 *
 * LIMITATION: the bulk threshold counts the ids of one request, so a client that sends many
 * small bulk revokes is not asked (the console's script sends chunks of 100, past the default
 * threshold of 50); revoke-matching and revoke-all of a user always ask. Counting ids per
 * session over the window would close it.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.js';
import { WardenError } from '../errors.js';
import { spellMs } from '../sessions/policy.js';
import { verifyPassword } from '../users/passwords.js';
import { actorOf } from './auth.js';
import { wantsJson } from './respond.js';
import { safeNext } from './sign-in.js';
import { type HiddenField, stepUpView } from './step-up-view.js';

/** The form field a re-auth page sends the password in. */
export const STEP_UP_FIELD = 'step_up_password';

/** When each session last entered its password; rows older than the window are pruned. */
export class StepUps {
  readonly #db: Kysely<DB>;
  readonly #clock: () => number;
  readonly #windowMs: number;

  constructor(db: Kysely<DB>, clock: () => number, windowMs: number) {
    this.#db = db;
    this.#clock = clock;
    this.#windowMs = windowMs;
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  /** Records that this session entered its password now; returns when that stops counting. */
  async record(sessionId: string): Promise<number> {
    const now = this.#clock();
    await this.#db
      .insertInto('step_ups')
      .values({ session_id: sessionId, at: now })
      .onConflict((oc) => oc.column('session_id').doUpdateSet({ at: now }))
      .execute();
    // Rows of sessions long gone: nobody reads them again.
    await this.#db
      .deleteFrom('step_ups')
      .where('at', '<', now - this.#windowMs)
      .execute();
    return now + this.#windowMs;
  }

  /** Until when this session's last password entry counts, or null when it does not. */
  async validUntil(sessionId: string): Promise<number | null> {
    const row = await this.#db
      .selectFrom('step_ups')
      .select('at')
      .where('session_id', '=', sessionId)
      .executeTakeFirst();
    if (!row) return null;
    const until = Number(row.at) + this.#windowMs;
    return until > this.#clock() ? until : null;
  }
}

/**
 * Checks the signed-in user's password for a step-up, within the password-attempt limits
 * (a wrong one counts, 429 when used up), records the step-up when right and audits either
 * way. Says whether it was right.
 */
export async function confirmPassword(
  request: FastifyRequest,
  reply: FastifyReply,
  password: string,
): Promise<boolean> {
  const { users, attempts, stepUps, audit } = request.server.warden;
  const { user: viewer, session } = request.auth!;
  const right = await attempts
    .check(request, reply, viewer.email, async () => {
      // The stored hash, read now: a password changed since sign-in is the one asked for.
      const user = await users.repo.findById(viewer.id);
      if (!user || !(await verifyPassword(password, user.password_hash))) {
        throw new WardenError('WARDEN_AUTH_INVALID_CREDENTIALS', ['password']);
      }
      return true;
    })
    .catch((err) => {
      if (err instanceof WardenError && err.code === 'WARDEN_AUTH_INVALID_CREDENTIALS')
        return false;
      throw err;
    });

  if (right) await stepUps.record(session.id);
  await audit.write(
    actorOf(request),
    {
      action: 'auth.step_up',
      target: `session:${session.id}`,
      outcome: right ? 'success' : 'refused',
      details: right ? {} : { reason: 'wrong password' },
    },
    request.log,
  );
  return right;
}

/** The fields of a form body worth sending again (never the CSRF token or a password). */
function hiddenFieldsOf(body: unknown): HiddenField[] {
  if (!body || typeof body !== 'object') return [];
  const fields: HiddenField[] = [];
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    if (name === '_csrf' || name === STEP_UP_FIELD) continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      if (['string', 'number', 'boolean'].includes(typeof one)) {
        fields.push({ name, value: String(one) });
      }
    }
  }
  return fields;
}

function cancelTarget(body: Record<string, unknown> | undefined): string {
  const back = safeNext(body?.return_to);
  return back.startsWith('/admin/') ? back : '/admin/sessions';
}

/**
 * A step-up's words that end with whom the route's `:userId` names, by email when they exist:
 * the person confirming may have come from a link, not from the user's page.
 */
export function namingUser(what: string): (request: FastifyRequest) => Promise<string> {
  return async (request) => {
    const { userId } = request.params as { userId: number };
    const user = await request.server.warden.users.repo.findById(userId);
    return `${what} ${user ? user.email : `user ${userId}`}`;
  };
}

/**
 * A preHandler (after the CSRF check) for an action that needs a fresh password. `what` says
 * in a few words what the action does, for the page; `when` narrows it to some requests
 * (a bulk revoke of many ids, a role change to superuser).
 */
export function requireStepUp(
  what: string | ((request: FastifyRequest) => Promise<string>),
  when?: (request: FastifyRequest) => boolean,
) {
  return async function stepUpChecked(
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply | undefined> {
    if (when && !when(request)) return;
    const { stepUps, audit } = request.server.warden;
    const { session } = request.auth!;
    if ((await stepUps.validUntil(session.id)) !== null) return;

    const json = wantsJson(request);
    const body = request.body as Record<string, unknown> | undefined;
    const given = json ? undefined : body?.[STEP_UP_FIELD];
    let error: string | null = null;
    if (typeof given === 'string' && given !== '') {
      if (await confirmPassword(request, reply, given)) return;
      error = 'That password is not right. Try again.';
    } else {
      await audit.write(
        actorOf(request),
        {
          action: 'auth.step_up_required',
          target: `${request.method} ${request.routeOptions.url ?? request.url}`,
          outcome: 'refused',
          details: { reason: 'password not entered in the step-up window' },
        },
        request.log,
      );
    }

    if (json) {
      throw new WardenError('WARDEN_STEP_UP_REQUIRED', [], {
        stepUp: '/api/auth/step-up',
        windowMs: stepUps.windowMs,
      });
    }
    return reply.code(403).page({
      title: 'Confirm your password',
      body: stepUpView({
        what: typeof what === 'string' ? what : await what(request),
        action: request.url,
        fields: hiddenFieldsOf(body),
        csrfToken: reply.csrfToken(),
        error,
        window: spellMs(stepUps.windowMs),
        cancelTo: cancelTarget(body),
      }),
    });
  };
}
