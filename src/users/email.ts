/**
 * @module users/email
 * One normal form for comparing emails: Unicode NFC, then lower case. The email is
 * stored as typed; only comparisons and the filter use this form.
 */

const EMAIL_RE = /^[^\s@<>()",;:\\]+@[^\s@<>()",;:\\]+\.[^\s@<>()",;:\\]+$/u;
// Characters that show as nothing, so an address holding one reads exactly as another in the
// console: controls and formats (zero-width spaces, direction overrides, soft hyphens), every
// default-ignorable one (variation selectors, Hangul fillers, the combining grapheme joiner),
// the blank braille pattern, private-use characters and lone surrogates (which the HTTP routes
// refuse in any field; the command line comes here directly).
const INVISIBLE_RE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Default_Ignorable_Code_Point}\u2800]/u;
export const MAX_EMAIL_LENGTH = 254;

export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}

/** A reason the address is unacceptable, or null. */
export function emailProblem(email: string): string | null {
  const trimmed = email.trim();
  if (trimmed.length === 0) return 'is required';
  if (trimmed.length > MAX_EMAIL_LENGTH) return `must be at most ${MAX_EMAIL_LENGTH} characters`;
  if (INVISIBLE_RE.test(trimmed)) return 'must not contain control or invisible characters';
  if (!EMAIL_RE.test(trimmed)) return 'is not an email address';
  return null;
}
