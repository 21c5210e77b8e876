/**
 * @module views/html
 * HTML built by a tagged template that escapes every value unless it is already
 * SafeHtml, so a user agent or an email can only ever show up as text.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

type Value = SafeHtml | string | number | boolean | null | undefined | readonly Value[];

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** `html\`<td>${email}</td>\`` escapes `email`; nested `html` fragments pass through. */
export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** Marks a string as HTML. Only for markup Warden itself wrote. */
export function raw(value: string): SafeHtml {
  return new SafeHtml(value);
}

// Characters that set the direction of the text after them (embeddings, overrides, isolates and
// marks): text anyone can write (a saved view's name, a user agent) holding one could reverse
// what follows it in the console, an audit entry included.
const DIRECTION_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Text with each direction control written out as its escape (`\u202e`), as JSON spells it. */
export function showDirectionControls(text: string): string {
  return text.replace(
    DIRECTION_CONTROLS,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Whether text holds a direction control (see showDirectionControls). */
export function hasDirectionControl(text: string): boolean {
  return text.search(DIRECTION_CONTROLS) !== -1;
}
