/**
 * @module http/step-up-view
 * The page that asks a superuser for their password before a sensitive action: the same
 * form again, its fields hidden, with a password field, posting to the same route.
 */
import { html, type SafeHtml } from '../views/html.js';

export interface HiddenField {
  name: string;
  value: string;
}

export function stepUpView(opts: {
  /** What the action does, e.g. "Revoking every session that matches the filters". */
  what: string;
  /** The route the form goes back to, query string included. */
  action: string;
  fields: HiddenField[];
  csrfToken: string;
  error: string | null;
  /** How long a step-up counts, in words (`5 minutes`). */
  window: string;
  cancelTo: string;
}): SafeHtml {
  return html`<div class="row justify-content-center"><div class="col-md-7 col-lg-5">
  <h1 class="h3 mb-3">Confirm your password</h1>
  <p>${opts.what} is a sensitive action. Enter your password to go on; you will not be asked
    again for ${opts.window}.</p>
  ${opts.error ? html`<div class="alert alert-danger" role="alert">${opts.error}</div>` : ''}
  <form method="post" action="${opts.action}" id="step-up-form">
    <input type="hidden" name="_csrf" value="${opts.csrfToken}">
    ${opts.fields.map((f) => html`<input type="hidden" name="${f.name}" value="${f.value}">`)}
    <div class="mb-3">
      <label class="form-label" for="step-up-password">Password</label>
      <input class="form-control" type="password" id="step-up-password" name="step_up_password"
        autocomplete="current-password" required autofocus>
    </div>
    <div class="d-flex gap-2">
      <button class="btn btn-danger" type="submit">Confirm and continue</button>
      <a class="btn btn-outline-secondary" href="${opts.cancelTo}">Cancel</a>
    </div>
  </form>
</div></div>`;
}
