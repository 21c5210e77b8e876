/**
 * @module users/common-passwords
 * The list of common passwords shipped beside this file (common-passwords.txt), read once on
 * first use. A password on it is refused whatever its length: it is among the first an attacker
 * tries.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LIST_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'common-passwords.txt');

let list: ReadonlySet<string> | undefined;

/** The entries, lower case; lines starting with `#` are comments. */
export function commonPasswords(): ReadonlySet<string> {
  list ??= new Set(
    fs
      .readFileSync(LIST_FILE, 'utf8')
      .split('\n')
      .map((line) => line.trim().toLowerCase())
      .filter((line) => line !== '' && !line.startsWith('#')),
  );
  return list;
}

/** Whether a password is on the list, compared in lower case. */
export function isCommonPassword(password: string): boolean {
  return commonPasswords().has(password.trim().toLowerCase());
}
