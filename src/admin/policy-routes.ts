/**
 * @module admin/policy-routes
 * `GET /admin/policy` shows the session policy in force and a form to change it;
 * `POST /admin/policy` saves it (audited from → to). A bad value answers 400 naming the
 * field: the form again with the message for a browser, the coded error for JSON.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type TSchema, Type } from '@sinclair/typebox';
import { durationMs, NOT_A_DURATION } from '../config.js';
import { ROLES, type Role } from '../db/schema.js';
import { problemText, WardenError } from '../errors.js';
import { actorOf, auditChange, requireCsrf } from '../http/auth.js';
import { done, wantsJson } from '../http/respond.js';
import {
  formatDuration,
  LIMIT_ACTIONS,
  type LimitAction,
  type LivePolicy,
  POLICY_BOUNDS,
  type PolicyDefaults,
  type PolicyOverrides,
  type RoleLimit,
  validateOverrides,
} from '../sessions/policy.js';
import {
  type FormProblem,
  formValuesOf,
  type PolicyFormValues,
  policyView,
} from './policy-view.js';

const Text = (maxLength: number) => Type.String({ maxLength });

// Text as the form sends it, or null (JSON) for the configured default.
const Duration = Type.Union([Text(20), Type.Null()], {
  description: `must be empty for the default, or a duration (e.g. 90s, 15m, 12h, 7d)`,
});

const roleFields: Record<string, TSchema> = {};
for (const role of ROLES) {
  roleFields[`max_sessions_${role}`] = Type.Optional(
    Type.Union([Text(12), Type.Integer(), Type.Null()], {
      description: `must be empty or a whole number from 1 to ${POLICY_BOUNDS.maxSessions}`,
    }),
  );
  roleFields[`on_limit_${role}`] = Type.Optional(
    Type.Union(LIMIT_ACTIONS.map((a) => Type.Literal(a))),
  );
}

/**
 * The form's fields; JSON clients send the same names. A field left out keeps its current
 * value; an empty one (or null) goes back to the default (config duration, no limit).
 */
const PolicyBody = Type.Object({
  _csrf: Type.Optional(Text(512)),
  version: Type.Optional(
    Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), Text(12)], {
      description: "must be the form's version number",
    }),
  ),
  idle_timeout: Type.Optional(Duration),
  absolute_lifetime: Type.Optional(Duration),
  ...roleFields,
});

type Body = Record<string, string | number | null | undefined>;

function invalid(field: string, problem: string): WardenError {
  return new WardenError('WARDEN_VALIDATION', [`${field} ${problem}`], { field });
}

function durationOf(field: string, raw: unknown, current: number | null): number | null {
  if (raw === undefined) return current;
  if (raw === null || String(raw).trim() === '') return null;
  // Zero is a duration too, too short: the policy's own bounds say how short (as for `1ms`).
  const ms = durationMs(String(raw));
  if (ms === undefined) throw invalid(field, `"${raw}" ${NOT_A_DURATION}`);
  return ms;
}

function maxSessionsOf(raw: unknown, current: number | null): number | null {
  if (raw === undefined) return current;
  if (raw === null || String(raw).trim() === '') return null;
  const text = String(raw).trim();
  // Anything but digits (`-1`, `2.5`) is told the range, as an out-of-range number is.
  return /^\d+$/.test(text) ? Number(text) : Number.NaN;
}

/** The overrides a body asks for, on top of the current ones; throws a 400 naming the field. */
function overridesFrom(body: Body, current: PolicyOverrides): PolicyOverrides {
  const roleLimits = {} as Record<Role, RoleLimit>;
  for (const role of ROLES) {
    const now = current.roleLimits[role];
    const onLimit = body[`on_limit_${role}`] as LimitAction | undefined;
    roleLimits[role] = {
      maxSessions: maxSessionsOf(body[`max_sessions_${role}`], now.maxSessions),
      onLimit: onLimit ?? now.onLimit,
    };
  }
  return {
    idleTimeoutMs: durationOf('idle_timeout', body.idle_timeout, current.idleTimeoutMs),
    absoluteLifetimeMs: durationOf(
      'absolute_lifetime',
      body.absolute_lifetime,
      current.absoluteLifetimeMs,
    ),
    roleLimits,
  };
}

/**
 * The first refusal, then each other field's: the field refused goes back to what is in force
 * and the rest is checked again, so that every bad value is marked at once, each judged beside
 * the values sent with it. A refusal of the form as a whole (a stale version) stands alone.
 */
function everyProblem(
  first: WardenError,
  body: Body,
  current: LivePolicy,
  defaults: PolicyDefaults,
): FormProblem[] {
  const field = (err: WardenError) => err.details?.field as string | undefined;
  // Under its field a problem needs no "Invalid request:"; the form's own refusal keeps it.
  const words = (err: WardenError) => (field(err) ? problemText(err) : err.message);
  const problems: FormProblem[] = [{ field: field(first), message: words(first) }];
  const rest = { ...body };
  for (let err = first; field(err) !== undefined && field(err) !== 'version'; ) {
    delete rest[field(err) as string];
    try {
      validateOverrides(defaults, overridesFrom(rest, current.overrides));
      break;
    } catch (next) {
      if (!(next instanceof WardenError) || problems.some((p) => p.field === field(next))) break;
      problems.push({ field: field(next), message: words(next) });
      err = next;
    }
  }
  return problems;
}

/** What the form showed when it was submitted, to show it again with an error. */
function submitted(body: Body, current: LivePolicy): PolicyFormValues {
  const values = formValuesOf(current);
  const text = (v: unknown, fallback: string) =>
    v === undefined || v === null ? fallback : String(v);
  values.idle_timeout = text(body.idle_timeout, values.idle_timeout);
  values.absolute_lifetime = text(body.absolute_lifetime, values.absolute_lifetime);
  for (const role of ROLES) {
    values.limits[role] = {
      max: text(body[`max_sessions_${role}`], values.limits[role].max),
      onLimit: (body[`on_limit_${role}`] as LimitAction | undefined) ?? values.limits[role].onLimit,
    };
  }
  return values;
}

/** The policy as the audit row and the JSON answer carry it: readable durations. */
function summary(p: LivePolicy) {
  const limits: Record<string, { maxSessions: number | null; onLimit: LimitAction }> = {};
  for (const role of ROLES) limits[role] = { ...p.roleLimits[role] };
  return {
    idleTimeout: formatDuration(p.idleTimeoutMs),
    absoluteLifetime: formatDuration(p.absoluteLifetimeMs),
    idleTimeoutOverridden: p.overrides.idleTimeoutMs !== null,
    absoluteLifetimeOverridden: p.overrides.absoluteLifetimeMs !== null,
    roleLimits: limits,
  };
}

/** Names of the settings that differ between two policies. */
function changedFields(from: LivePolicy, to: LivePolicy): string[] {
  const changed: string[] = [];
  if (from.overrides.idleTimeoutMs !== to.overrides.idleTimeoutMs) changed.push('idle_timeout');
  if (from.overrides.absoluteLifetimeMs !== to.overrides.absoluteLifetimeMs) {
    changed.push('absolute_lifetime');
  }
  for (const role of ROLES) {
    const a = from.roleLimits[role];
    const b = to.roleLimits[role];
    if (a.maxSessions !== b.maxSessions) changed.push(`max_sessions_${role}`);
    if (a.onLimit !== b.onLimit) changed.push(`on_limit_${role}`);
  }
  return changed;
}

function policyJson(
  p: LivePolicy,
  defaults: { idleTimeoutMs: number; absoluteLifetimeMs: number },
) {
  return {
    version: p.version,
    idleTimeoutMs: p.idleTimeoutMs,
    absoluteLifetimeMs: p.absoluteLifetimeMs,
    roleLimits: p.roleLimits,
    overrides: {
      idleTimeoutMs: p.overrides.idleTimeoutMs,
      absoluteLifetimeMs: p.overrides.absoluteLifetimeMs,
    },
    defaults: {
      idleTimeoutMs: defaults.idleTimeoutMs,
      absoluteLifetimeMs: defaults.absoluteLifetimeMs,
    },
    updatedAt: p.updatedAt,
    updatedBy: p.updatedBy,
  };
}

export const policyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { policies, audit, csrf, clock } = app.warden;
  const csrfChecked = requireCsrf({ audit, csrf });

  app.get('/policy', async (request, reply) => {
    const policy = await policies.current();
    if (wantsJson(request)) return policyJson(policy, policies.defaults);
    return reply.page({
      title: 'Session policy',
      nav: 'policy',
      body: policyView({
        policy,
        defaults: policies.defaults,
        values: formValuesOf(policy),
        version: policy.version,
        now: clock(),
        csrfToken: reply.csrfToken(),
      }),
    });
  });

  app.post(
    '/policy',
    {
      config: { auditAction: 'policy.update' },
      schema: { body: PolicyBody },
      preHandler: csrfChecked,
    },
    async (request, reply) => {
      const started = performance.now();
      const body = request.body as Body;
      const actor = actorOf(request);
      const current = await policies.current();

      let result: { from: LivePolicy; to: LivePolicy };
      try {
        const version = body.version;
        if (version !== undefined && !/^\d+$/.test(String(version).trim())) {
          throw invalid('version', `"${version}" is not a whole number`);
        }
        const overrides = overridesFrom(body, current.overrides);
        const candidate = { ...current, overrides, roleLimits: overrides.roleLimits };
        if (changedFields(current, candidate).length === 0) {
          // Nothing to change: no new version, but the attempt is still on record.
          if (version !== undefined && Number(version) !== current.version) {
            throw invalid(
              'version',
              'does not match the policy in force; review it and save again',
            );
          }
          result = { from: current, to: current };
        } else {
          result = await policies.update(overrides, {
            email: actor.email,
            at: clock(),
            ...(version !== undefined ? { expectVersion: Number(version) } : {}),
          });
        }
      } catch (err) {
        if (!(err instanceof WardenError) || err.code !== 'WARDEN_VALIDATION') throw err;
        // A value it cannot take, or a form shown before someone else's change: on record,
        // as every refused console change is.
        await auditChange(audit, request, {
          target: 'session_policy',
          outcome: 'refused',
          details: { reason: err.message, field: err.details?.field ?? null },
        });
        if (wantsJson(request)) throw err;
        const fresh = await policies.current();
        // The form keeps the version it was shown with, so that its next save is checked
        // against the policy in force as this one was; only a refusal for that version (the
        // policy changed since) shows the current one, after which the same save goes through.
        const shown = String(body.version ?? '').trim();
        const version =
          err.details?.field === 'version' || !/^\d+$/.test(shown) ? fresh.version : Number(shown);
        return reply.code(400).page({
          title: 'Session policy',
          nav: 'policy',
          body: policyView({
            policy: fresh,
            defaults: policies.defaults,
            values: submitted(body, fresh),
            version,
            ...(err.details?.field === 'version' ? { inForce: formValuesOf(fresh) } : {}),
            now: clock(),
            csrfToken: reply.csrfToken(),
            problems: everyProblem(err, body, current, policies.defaults),
          }),
        });
      }

      const { from, to } = result;
      const changed = changedFields(from, to);
      await auditChange(audit, request, {
        target: 'session_policy',
        outcome: 'success',
        details: { changed, from: summary(from), to: summary(to), version: to.version },
        durationMs: Math.round(performance.now() - started),
      });
      return done(request, reply, {
        json: { changed, policy: policyJson(to, policies.defaults) },
        redirectTo: '/admin/policy',
        flash:
          changed.length === 0
            ? { kind: 'info', message: 'Nothing changed.' }
            : { kind: 'success', message: `Session policy saved (version ${to.version}).` },
      });
    },
  );
};
