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
// address that mixes them is refused, so `\u0430dmin@` is no second `admin@`.
const LOOK_ALIKE_SCRIPTS = [/\p{Script=Latin}/u, /\p{Script=Cyrillic}/u, /\p{Script=Greek}/u];
// Cyrillic and Greek letters that read as a Latin one in lower case (after Unicode's
// confusables, the common ones only): a part written wholly in them (`сео`, `аррӏе`) reads as a
// Latin address and is refused. A part with one letter of its own alphabet (`иван`) is not.
const LOOK_ALIKES = 'аеіјорсухѕԁӏԛԝһαικνορυχ';
const READ_AS = 'aeijopcyxsdlqwhaikvopux';
const READS_AS_LATIN = new Map([...LOOK_ALIKES].map((c, i) => [c, READ_AS[i]!]));
// Latin letters of phonetic notation (ɡ, ɑ, ɩ) and modifier letters, which read as ordinary ones
// and which no mailbox needs.
const PHONETIC_LETTERS = /[\u0250-\u02ff\u1d00-\u1dbf]/u;
// Dots that separate a domain's labels as "." does (ideographic and fullwidth ones).
const OTHER_DOTS = /[\u3002\uff0e\uff61]/u;

/** The part's letters as the Latin ones they read as, or null when one has no such reading. */
function latinReading(part: string): string | null {
  let out = '';
  for (const char of part.toLowerCase()) {
    if (/\p{L}/u.test(char)) {
      const latin = READS_AS_LATIN.get(char);
      if (latin === undefined) return null;
      out += latin;
    } else out += char;
  }
  return /\p{L}/u.test(part) ? out : null;
}

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
  if (OTHER_DOTS.test(trimmed)) return 'must use "." for its dots';
  // Fullwidth letters (ａ), ligatures and the like are other spellings of ordinary ones.
  if (trimmed.normalize('NFKC') !== trimmed.normalize('NFC') || PHONETIC_LETTERS.test(trimmed)) {
    return 'uses letters written in another form (such as fullwidth ａ or phonetic ɡ), so it would read as another address';
  }
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
    const latin = latinReading(part);
    if (latin !== null && alphabets === 1 && !LOOK_ALIKE_SCRIPTS[0]!.test(part)) {
      return `reads as "${latin}" in Latin letters, so it would read as another address`;
    }
  }
  return null;
}

/** Whether text has an email address's shape (what a log line may show of a sign-in). */
export function isEmailShaped(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.length <= MAX_EMAIL_LENGTH && EMAIL_RE.test(trimmed);
}
