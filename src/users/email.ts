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
// Alphabets whose letters read as one another's (Latin a, Cyrillic а, Greek α): one part of an
// address that mixes them is refused, so `\u0430dmin@` is no second `admin@`. A part written
// wholly in one of them is accepted: refusing addresses that read like another one in a
// different alphabet needs a table of look-alike letters (Unicode's confusables), not kept here.
const LOOK_ALIKE_SCRIPTS = [/\p{Script=Latin}/u, /\p{Script=Cyrillic}/u, /\p{Script=Greek}/u];

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
  const [local = '', domain = ''] = trimmed.split('@');
  // `example.com.` names the same domain as `example.com`.
  if (domain.startsWith('.') || domain.endsWith('.') || domain.includes('..')) {
    return 'is not an email address (its domain has an empty part)';
  }
  for (const part of [local, ...domain.split('.')]) {
    const alphabets = LOOK_ALIKE_SCRIPTS.filter((script) => script.test(part)).length;
    if (alphabets > 1) {
      return 'mixes letters of different alphabets (such as Latin and Cyrillic), so it would read as another address';
    }
  }
  return null;
}

/** Whether text has an email address's shape (what a log line may show of a sign-in). */
export function isEmailShaped(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.length <= MAX_EMAIL_LENGTH && EMAIL_RE.test(trimmed);
}
