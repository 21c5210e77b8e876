/**
 * @module errors
 * Every error Warden answers with, listed once: a stable code, an HTTP status and a
 * message template. Codes are never reused once retired; the README's error table
 * lists each of them (a test checks it).
 */

export const ERRORS = {
  WARDEN_VALIDATION: { status: 400, message: 'Invalid request: %s' },
  WARDEN_BULK_TOO_MANY: { status: 400, message: 'Too many ids: %s given, at most %s allowed' },
  WARDEN_CONFIRM_MISMATCH: {
    status: 400,
    message: 'Confirmation %s does not match the number of sessions that match the filters (%s)',
  },
  WARDEN_AUTH_REQUIRED: { status: 401, message: 'Sign in first' },
  WARDEN_AUTH_INVALID_CREDENTIALS: { status: 401, message: 'Wrong %s' },
  WARDEN_AUTH_NOT_APPROVED: { status: 403, message: 'This account is %s' },
  WARDEN_AUTH_SESSION_LIMIT: {
    status: 403,
    message:
      'Your role allows %s at a time, and you have that many: sign out on another device, or ask an administrator to end one',
  },
  WARDEN_FORBIDDEN: { status: 403, message: 'Superusers only' },
  WARDEN_CSRF_INVALID: { status: 403, message: 'Missing or invalid CSRF token: %s' },
  WARDEN_STEP_UP_REQUIRED: {
    status: 403,
    message: 'Enter your password again first (POST /api/auth/step-up)',
  },
  WARDEN_METRICS_FORBIDDEN: { status: 403, message: 'Metrics are served only to %s' },
  WARDEN_NOT_FOUND: { status: 404, message: 'Not found: %s' },
  WARDEN_METHOD_NOT_ALLOWED: { status: 405, message: '%s does not answer %s; it answers %s' },
  WARDEN_USER_EMAIL_TAKEN: { status: 409, message: 'An account with this email exists' },
  WARDEN_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'Send JSON (application/json) or a form (application/x-www-form-urlencoded), not %s',
  },
  WARDEN_BODY_TOO_LARGE: { status: 413, message: 'The body is larger than %s KB' },
  WARDEN_RATE_LIMITED: { status: 429, message: 'Too many attempts; retry in %s' },
  WARDEN_HEADERS_TOO_LARGE: {
    status: 431,
    message: 'The address or the cookies are too long (the request head is limited to %s KB)',
  },
  WARDEN_INTERNAL: { status: 500, message: 'Internal error' },
  WARDEN_STORE_UNAVAILABLE: {
    status: 503,
    message: 'The session store is unavailable; Warden retries by itself',
  },
  WARDEN_DATABASE_UNAVAILABLE: {
    status: 503,
    message: 'The database is unavailable; Warden retries by itself',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a code from the catalogue; the HTTP layer turns it into a response. */
export class WardenError extends Error {
  override name = 'WardenError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    /** The values put into the message's template (for WARDEN_VALIDATION, the problem alone). */
    readonly params: readonly (string | number)[] = [],
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    let i = 0;
    super(
      ERRORS[code].message.replace(/%s/g, () => String(params[i++] ?? '')),
      options,
    );
    this.status = ERRORS[code].status;
  }
}

/** What a form shows of an error beside what it concerns: a validation error's problem alone. */
export function problemText(err: WardenError): string {
  return err.code === 'WARDEN_VALIDATION' ? String(err.params[0] ?? err.message) : err.message;
}

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/**
 * What failed, in a line: an error's message alone, or what was thrown as text. For lines and
 * fields that name a failure without its stack (an outage's warnings, an audit row's reason).
 */
export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
