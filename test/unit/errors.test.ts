import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, WardenError } from '../../src/errors.js';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const rows = new Map(
  [...readme.matchAll(/^\|\s*`(WARDEN_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [
    m[1],
    Number(m[2]),
  ]),
);

describe('error catalogue', () => {
  it('should list every code in the README error table with its status', () => {
    for (const [code, { status }] of Object.entries(ERRORS)) {
      expect(rows.get(code), `README row for ${code}`).toBe(status);
    }
  });

  it('should not list a code in the README that the catalogue does not have', () => {
    for (const code of rows.keys()) expect(ERRORS).toHaveProperty(code);
  });

  it('should fill the message template and carry the status', () => {
    const err = new WardenError('WARDEN_BULK_TOO_MANY', [1500, 1000]);
    expect(err.message).toBe('Too many ids: 1500 given, at most 1000 allowed');
    expect(err.status).toBe(400);
  });
});
