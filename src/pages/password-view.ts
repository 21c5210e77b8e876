/**
 * @module pages/password-view
 * The form a signed-in person changes their own password with.
 */
import { html, type SafeHtml } from '../views/html.js';

export type PasswordField = 'current_password' | 'new_password' | 'confirm_password';

export function passwordView(opts: {
  csrfToken: string;
  minPasswordLength: number;
  /** A message about the whole form (too many attempts, store down). */
  error?: string | null;
  /** A message under one field. */
  fieldError?: { field: PasswordField; message: string } | null;
}): SafeHtml {
  const invalid = (field: PasswordField) => (opts.fieldError?.field === field ? ' is-invalid' : '');
  const feedback = (field: PasswordField) =>
    opts.fieldError?.field === field
      ? html`<div class="invalid-feedback" id="${field}-error">${opts.fieldError.message}</div>`
      : '';
  const input = (field: PasswordField, label: string, autocomplete: string, help?: SafeHtml) =>
    html`<div class="mb-3">
      <label class="form-label" for="${field}">${label}</label>
      <input class="form-control${invalid(field)}" type="password" id="${field}" name="${field}"
        autocomplete="${autocomplete}" required>
      ${feedback(field)}${help ?? ''}
    </div>`;

  return html`<div class="row justify-content-center"><div class="col-md-7 col-lg-5">
  <h1 class="h3 mb-3">Change your password</h1>
  <p>Every other session of yours ends when the password changes; this one stays signed in.</p>
  ${opts.error ? html`<div class="alert alert-danger" role="alert">${opts.error}</div>` : ''}
  <form method="post" action="/me/password" novalidate id="password-form">
    <input type="hidden" name="_csrf" value="${opts.csrfToken}">
    ${input('current_password', 'Current password', 'current-password')}
    ${input(
      'new_password',
      'New password',
      'new-password',
      html`<div class="form-text">At least ${opts.minPasswordLength} characters, and not one of
        the commonly used passwords.</div>`,
    )}
    ${input('confirm_password', 'New password again', 'new-password')}
    <button class="btn btn-primary" type="submit">Change password</button>
  </form>
</div></div>`;
}
