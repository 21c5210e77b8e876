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
// Alphabets whose letters read as Latin ones (Cyrillic а, Greek α, Armenian օ, Cherokee Ꭺ,
// Lisu ꓮ): one part of an address that mixes Latin with one of them is refused, so
// `\u0430dmin@` is no second `admin@`.
const LATIN = /\p{Script=Latin}/u;
const LOOK_ALIKE_SCRIPTS = [
  /\p{Script=Cyrillic}/u,
  /\p{Script=Greek}/u,
  /\p{Script=Armenian}/u,
  /\p{Script=Cherokee}/u,
  /\p{Script=Lisu}/u,
];
// Cyrillic and Greek letters that read as a Latin one, as typed (after Unicode's confusables,
// the common ones only). A part written wholly in them (`сео`, `аррӏе`, `ТОМ`) beside Latin
// labels reads as a Latin address and is refused; `иван@пример.рус` is not, as browsers do with
// a label whose top-level domain is of its own alphabet.
const LOOK_ALIKES = 'аеіјорсухѕԁӏԛԝһαικνορυχАВЕКМНОРСТХЅІЈԚԜҮΑΒΕΖΗΙΚΜΝΟΡΤΥΧ';
const READ_AS = 'aeijopcyxsdlqwhaikvopuxABEKMHOPCTXSIJQWYABEZHIKMNOPTYX';
const READS_AS_LATIN = new Map([...LOOK_ALIKES].map((c, i) => [c, READ_AS[i]!]));
// Latin letters that read as other Latin ones and belong to no orthography (phonetic script g,
// alpha, iota); ə, ɔ and ɗ are letters of Azerbaijani, Akan and Hausa and stay.
const LATIN_LOOK_ALIKES = /[\u0251\u0261\u0269]/u;
// Fullwidth and halfwidth forms (ａ, ．), mathematical letters (𝐚) and enclosed ones (ⓐ): other
// spellings of ordinary letters.
const OTHER_FORMS = /[\uff00-\uffef\u2460-\u24ff\u{1d400}-\u{1d7ff}]/u;
// Dots that read as "." (ideographic, Arabic-Indic zeros, Syriac, a leader, a small stop); a
// middle dot only between two l's, where Catalan writes it (col·legi).
const OTHER_DOTS = /[\u3002\u0660\u06f0\u0701\u0702\u2024\ufe52]|(?<![lL])\u00b7|\u00b7(?![lL])/u;

/** The part's letters as the Latin ones they read as, or null when one has no such reading. */
function latinReading(part: string): string | null {
  let out = '';
  for (const char of part) {
    if (/\p{L}/u.test(char)) {
      const latin = READS_AS_LATIN.get(char);
      if (latin === undefined) return null;
      out += latin;
    } else out += char;
  }
  return /\p{L}/u.test(part) ? out : null;
}

/**
 * Why an address would read as another one, or null: checked when an account is made, not when
 * one is found, so an account made before these rules keeps working.
 */
export function lookAlikeProblem(email: string): string | null {
  const trimmed = email.trim();
  if (OTHER_DOTS.test(trimmed)) return 'must use "." for its dots';
  if (OTHER_FORMS.test(trimmed) || LATIN_LOOK_ALIKES.test(trimmed)) {
    return 'uses letters written in another form (such as fullwidth ａ or script ɡ), so it would read as another address';
  }
  const [local = '', domain = ''] = trimmed.split('@');
  // `example.com.` names the same domain as `example.com`.
  if (domain.startsWith('.') || domain.endsWith('.') || domain.includes('..')) {
    return 'is not an email address (its domain has an empty part)';
  }
  const labels = domain.split('.');
  const parts = [local, ...labels];
  for (const part of parts) {
    if (LATIN.test(part) && LOOK_ALIKE_SCRIPTS.some((script) => script.test(part))) {
      return 'mixes letters of different alphabets (such as Latin and Cyrillic), so it would read as another address';
    }
  }
  // A part wholly of look-alikes reads as Latin beside Latin labels (`@аррӏе.com`, `сео@x.com`).
  for (const part of parts) {
    const latin = latinReading(part);
    if (latin === null) continue;
    if (parts.some((other) => other !== part && LATIN.test(other))) {
      return `reads as "${latin}" in Latin letters, so it would read as another address`;
    }
  }
  return null;
}

export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}

/** Why an address cannot name an account: its shape, then whether it reads as another. */
export function emailProblem(email: string): string | null {
  return emailShapeProblem(email) ?? lookAlikeProblem(email);
}

/** Why text is no email address at all, or null. */
export function emailShapeProblem(email: string): string | null {
  const trimmed = email.trim();
  if (trimmed.length === 0) return 'is required';
  if (trimmed.length > MAX_EMAIL_LENGTH) return `must be at most ${MAX_EMAIL_LENGTH} characters`;
  if (INVISIBLE_RE.test(trimmed)) return 'must not contain control or invisible characters';
  if (!EMAIL_RE.test(trimmed)) return 'is not an email address';
  return null;
}

/** Whether text has an email address's shape (what a log line may show of a sign-in). */
export function isEmailShaped(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.length <= MAX_EMAIL_LENGTH && EMAIL_RE.test(trimmed);
}
