/**
 * @module admin/policy-view
 * The session policy page: idle timeout, absolute lifetime and the per-role limits, with
 * what is in force and where each value comes from. Plain data in, HTML out.
 */

import { durationMs } from '../config.js';
import { ROLES, type Role } from '../db/schema.js';
import {
  describeMs,
  formatDuration,
  type LimitAction,
  type LivePolicy,
  type PolicyDefaults,
} from '../sessions/policy.js';
import { html, type SafeHtml } from '../views/html.js';
import { timeCell } from '../views/layout.js';

/** What the form shows in each field: the saved values, or what was just submitted. */
export interface PolicyFormValues {
  idle_timeout: string;
  absolute_lifetime: string;
  limits: Record<Role, { max: string; onLimit: LimitAction }>;
}

export function formValuesOf(p: LivePolicy): PolicyFormValues {
  const o = p.overrides;
  const limits = {} as PolicyFormValues['limits'];
  for (const role of ROLES) {
    const l = o.roleLimits[role];
    limits[role] = { max: l.maxSessions === null ? '' : String(l.maxSessions), onLimit: l.onLimit };
  }
  return {
    idle_timeout: o.idleTimeoutMs === null ? '' : formatDuration(o.idleTimeoutMs),
    absolute_lifetime: o.absoluteLifetimeMs === null ? '' : formatDuration(o.absoluteLifetimeMs),
    limits,
  };
}

const ACTION_LABELS: Record<LimitAction, string> = {
  refuse: 'Refuse the new sign-in',
  evict_oldest: 'End the oldest session',
};

/** Whether an error's field is one the form shows (its message then sits under it). */
function onForm(field: string | undefined): boolean {
  return !!field && /^(idle_timeout|absolute_lifetime|max_sessions_\w+|on_limit_\w+)$/.test(field);
}

/** What is wrong with one field of the form, or with the form as a whole (no field). */
export interface FormProblem {
  field?: string;
  message: string;
}

function problemOf(field: string, problems: readonly FormProblem[]): FormProblem | undefined {
  return problems.find((p) => p.field === field);
}

function invalid(field: string, problems: readonly FormProblem[]): string {
  return problemOf(field, problems) ? ' is-invalid' : '';
}

/** The problem under a field, with the id its input names it by (see described). */
function feedback(field: string, id: string, problems: readonly FormProblem[]): SafeHtml | '' {
  const problem = problemOf(field, problems);
  return problem
    ? html`<div class="invalid-feedback" id="${id}-error">${problem.message}</div>`
    : '';
}

/**
 * A field's aria-describedby (its help, and its problem when it has one) and aria-invalid: a
 * screen reader entering a refused field reads why, not only its red border.
 */
function described(
  field: string,
  id: string,
  problems: readonly FormProblem[],
  help?: string,
): SafeHtml {
  const problem = problemOf(field, problems);
  const ids = [help, problem ? `${id}-error` : undefined].filter(Boolean).join(' ');
  return html`${ids ? html` aria-describedby="${ids}"` : ''}${problem ? html` aria-invalid="true"` : ''}`;
}

/**
 * Under a field whose value is not what is in force, on a form refused because the policy
 * changed since it was shown: what is in force, so that "review it and save again" does not put
 * back another superuser's change unseen.
 */
function inForceNote(field: string, now: string): SafeHtml {
  return html`<div class="form-text text-warning-emphasis" data-in-force="${field}">In force now: ${now}</div>`;
}

function durationField(d: {
  name: 'idle_timeout' | 'absolute_lifetime';
  label: string;
  value: string;
  fallbackMs: number;
  variable: string;
  help: string;
  problems: readonly FormProblem[];
  inForce?: string;
}): SafeHtml {
  const id = `p-${d.name.replace('_', '-')}`;
  const now = d.inForce;
  // `120m` and `2h` are the same lifetime; an empty field is the configured one.
  const meaning = (text: string) => (text.trim() === '' ? null : (durationMs(text) ?? text));
  const differs = now !== undefined && meaning(d.value) !== meaning(now);
  return html`<div class="col-md-6">
  <label class="form-label" for="${id}">${d.label}</label>
  <input class="form-control${invalid(d.name, d.problems)}" id="${id}" name="${d.name}" value="${d.value}"
    placeholder="${formatDuration(d.fallbackMs)} (${d.variable})" maxlength="20" inputmode="text"${described(d.name, id, d.problems, `${id}-help`)}>
  <div class="form-text" id="${id}-help">${d.help} Empty: the configured
    ${describeMs(d.fallbackMs)} (<code>${d.variable}</code>). Units: <code>s</code>, <code>m</code>,
    <code>h</code>, <code>d</code>.</div>
  ${differs ? inForceNote(d.name, now === '' ? `the configured ${describeMs(d.fallbackMs)}` : now) : ''}
  ${feedback(d.name, id, d.problems)}
</div>`;
}

function roleRow(
  role: Role,
  v: PolicyFormValues['limits'][Role],
  problems: readonly FormProblem[],
  now?: PolicyFormValues['limits'][Role],
): SafeHtml {
  const max = `max_sessions_${role}`;
  const on = `on_limit_${role}`;
  return html`<tr data-role="${role}">
  <th scope="row">${role}</th>
  <td data-label="Most sessions">
    <input class="form-control form-control-sm${invalid(max, problems)}" id="p-${max}" name="${max}" value="${v.max}"
      inputmode="numeric" placeholder="no limit" maxlength="5" aria-label="Most concurrent sessions for ${role}"${described(max, `p-${max}`, problems)}>
    ${now && v.max.trim() !== now.max ? inForceNote(max, now.max === '' ? 'no limit' : now.max) : ''}
    ${feedback(max, `p-${max}`, problems)}
  </td>
  <td data-label="At the limit">
    <select class="form-select form-select-sm${invalid(on, problems)}" id="p-${on}" name="${on}"
      aria-label="At the limit, for ${role}">
      ${(Object.keys(ACTION_LABELS) as LimitAction[]).map(
        (a) =>
          html`<option value="${a}"${a === v.onLimit ? html` selected` : ''}>${ACTION_LABELS[a]}</option>`,
      )}
    </select>
    ${now && now.onLimit !== v.onLimit ? inForceNote(on, ACTION_LABELS[now.onLimit]) : ''}
  </td>
</tr>`;
}

function inForce(p: LivePolicy, defaults: PolicyDefaults, now: number): SafeHtml {
  const source = (override: number | null) =>
    override === null ? html`<span class="text-body-secondary">(default)</span>` : html`(set here)`;
  const limits = ROLES.map((role) => {
    const l = p.roleLimits[role];
    return l.maxSessions === null
      ? html`<li>${role}: no limit</li>`
      : html`<li>${role}: at most ${l.maxSessions}; then ${ACTION_LABELS[l.onLimit].toLowerCase()}</li>`;
  });
  return html`<div class="card mb-4" id="policy-in-force"><div class="card-body">
  <h2 class="h6 card-title">In force now (version <span data-policy-version>${p.version}</span>)</h2>
  <ul class="mb-2">
    <li>Idle timeout: <strong data-policy-idle>${describeMs(p.idleTimeoutMs)}</strong>
      ${source(p.overrides.idleTimeoutMs)}</li>
    <li>Absolute lifetime: <strong data-policy-absolute>${describeMs(p.absoluteLifetimeMs)}</strong>
      ${source(p.overrides.absoluteLifetimeMs)}</li>
    ${limits}
  </ul>
  <p class="small text-body-secondary mb-0">${
    p.updatedAt === null
      ? html`Never changed here: the configuration's values apply (idle ${describeMs(defaults.idleTimeoutMs)},
        absolute ${describeMs(defaults.absoluteLifetimeMs)}).`
      : html`Last changed ${timeCell(p.updatedAt, now)} by ${p.updatedBy ?? 'unknown'}.`
  }</p>
</div></div>`;
}

export function policyView(d: {
  policy: LivePolicy;
  defaults: PolicyDefaults;
  values: PolicyFormValues;
  /** The version the form was shown with; a save against another version is refused. */
  version: number;
  now: number;
  csrfToken: string;
  /** Why the form was refused: each field's problem, or the form's own (the first shown). */
  problems?: readonly FormProblem[];
  /** The values in force, on a form refused because the policy changed since it was shown. */
  inForce?: PolicyFormValues;
}): SafeHtml {
  const problems = d.problems ?? [];
  const e = problems[0];
  const marked = problems.filter((p) => onForm(p.field)).length;
  return html`<h1 class="h3">Session policy</h1>
${inForce(d.policy, d.defaults, d.now)}
${
  e
    ? html`<div class="alert alert-danger" role="alert" id="policy-error">${
        !onForm(e.field)
          ? e.message
          : marked === 1
            ? 'The policy was not saved: see the field marked below.'
            : `The policy was not saved: see the ${marked} fields marked below.`
      }</div>`
    : ''
}
<form method="post" action="/admin/policy" class="col-xl-9" novalidate>
  <input type="hidden" name="_csrf" value="${d.csrfToken}">
  <input type="hidden" name="version" value="${d.version}">
  <h2 class="h5">Lifetimes</h2>
  <div class="row g-3 mb-3">
    ${durationField({
      name: 'idle_timeout',
      label: 'Idle timeout',
      value: d.values.idle_timeout,
      fallbackMs: d.defaults.idleTimeoutMs,
      variable: 'IDLE_TIMEOUT',
      help: 'A session unused this long ends.',
      problems,
      inForce: d.inForce?.idle_timeout,
    })}
    ${durationField({
      name: 'absolute_lifetime',
      label: 'Absolute lifetime',
      value: d.values.absolute_lifetime,
      fallbackMs: d.defaults.absoluteLifetimeMs,
      variable: 'ABSOLUTE_LIFETIME',
      help: 'A session ends this long after sign-in, whatever its use.',
      problems,
      inForce: d.inForce?.absolute_lifetime,
    })}
  </div>
  <h2 class="h5">Concurrent sessions per role</h2>
  <div class="table-responsive"><table class="table table-sm align-middle table-fit table-stack" id="role-limits">
    <thead><tr><th scope="col">Role</th><th scope="col">Most active sessions</th>
      <th scope="col">When a sign-in would go past it</th></tr></thead>
    <tbody>${ROLES.map((role) => roleRow(role, d.values.limits[role], problems, d.inForce?.limits[role]))}</tbody>
  </table></div>
  <p class="small text-body-secondary">Changes apply to new sign-ins at once and to signed-in
    sessions on their next request: a shorter idle timeout or absolute lifetime ends sessions
    already past it; a longer idle timeout applies from their next request; a longer absolute
    lifetime applies to sessions signed in after the change. Other Warden instances follow
    within a few seconds. Every change is in the audit log.</p>
  <button class="btn btn-primary" type="submit">Save policy</button>
</form>`;
}
