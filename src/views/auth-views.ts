/**
 * @module views/auth-views
 * Sign-in, registration and the signed-in home page.
 */
import type { SessionRecord } from '../sessions/session-store.js';
import { html, type SafeHtml } from './html.js';
import { timeCell, utc } from './layout.js';

function alert(kind: string, message: string | null | undefined): SafeHtml | '' {
  return message ? html`<div class="alert alert-${kind}" role="alert">${message}</div>` : '';
}

/** The email field both forms start with, keeping what the person typed. */
function emailField(email: string | undefined): SafeHtml {
  return html`<div class="mb-3">
      <label class="form-label" for="email">Email</label>
      <input class="form-control" type="email" id="email" name="email" value="${email ?? ''}"
        autocomplete="username" required autofocus>
    </div>`;
}

export function loginView(opts: {
  csrfToken: string;
  email?: string;
  next?: string;
  error?: string | null;
  notice?: string | null;
  needsSuperuser?: boolean;
}): SafeHtml {
  return html`<div class="row justify-content-center"><div class="col-md-6 col-lg-4">
  <h1 class="h3 mb-3">Sign in</h1>
  ${
    opts.needsSuperuser
      ? html`<div class="alert alert-info" role="note" id="first-run">
      <strong>No superuser yet.</strong> Create the first one from a terminal in Warden's folder,
      with the server's own <code>DATABASE_URL</code> (and <code>REDIS_URL</code>) set:
      <code>npx warden create-superuser --email you@example.com</code>. There is no default password.
    </div>`
      : ''
  }
  ${alert('warning', opts.notice)}
  ${alert('danger', opts.error)}
  <form method="post" action="/login" novalidate>
    <input type="hidden" name="_csrf" value="${opts.csrfToken}">
    <input type="hidden" name="next" value="${opts.next ?? ''}">
    ${emailField(opts.email)}
    <div class="mb-3">
      <label class="form-label" for="password">Password</label>
      <input class="form-control" type="password" id="password" name="password"
        autocomplete="current-password" required>
    </div>
    <button class="btn btn-primary w-100" type="submit">Sign in</button>
  </form>
  <p class="mt-3 small">No account? <a href="/register">Register</a>; a superuser approves new accounts.</p>
</div></div>`;
}

export function registerView(opts: {
  csrfToken: string;
  email?: string;
  error?: string | null;
  minPasswordLength: number;
}): SafeHtml {
  return html`<div class="row justify-content-center"><div class="col-md-6 col-lg-4">
  <h1 class="h3 mb-3">Register</h1>
  ${alert('danger', opts.error)}
  <form method="post" action="/register" novalidate>
    <input type="hidden" name="_csrf" value="${opts.csrfToken}">
    ${emailField(opts.email)}
    <div class="mb-3">
      <label class="form-label" for="password">Password</label>
      <input class="form-control" type="password" id="password" name="password"
        autocomplete="new-password" minlength="${opts.minPasswordLength}" required
        aria-describedby="password-help">
      <div class="form-text" id="password-help">At least ${opts.minPasswordLength} characters.</div>
    </div>
    <button class="btn btn-primary w-100" type="submit">Register</button>
  </form>
  <p class="mt-3 small">Already approved? <a href="/login">Sign in</a>.</p>
</div></div>`;
}

export function registeredView(email: string): SafeHtml {
  return html`<div class="row justify-content-center"><div class="col-md-6">
  <h1 class="h3">Thanks for registering</h1>
  <p class="text-break">The account <strong>${email}</strong> is waiting for a superuser's approval.
  You can sign in once it is approved.</p>
  <p><a href="/login">Go to sign in</a></p>
</div></div>`;
}

export function homeView(opts: {
  email: string;
  role: string;
  session: SessionRecord;
  now: number;
  isSuperuser: boolean;
}): SafeHtml {
  const { session, now } = opts;
  return html`<h1 class="h3">Signed in</h1>
<p class="text-break">You are signed in as <strong data-testid="whoami">${opts.email}</strong> (${opts.role}).</p>
<dl class="row">
  <dt class="col-sm-3">Signed in</dt><dd class="col-sm-9">${utc(session.createdAt)}</dd>
  <dt class="col-sm-3">Session ends</dt>
  <dd class="col-sm-9">${timeCell(Math.min(session.idleExpiresAt, session.absoluteExpiresAt), now)}
    if idle; at the latest ${utc(session.absoluteExpiresAt)}</dd>
  <dt class="col-sm-3">From</dt><dd class="col-sm-9">${session.ip}</dd>
</dl>
${opts.isSuperuser ? html`<p><a class="btn btn-primary" href="/admin/sessions">Open the console</a></p>` : ''}`;
}
