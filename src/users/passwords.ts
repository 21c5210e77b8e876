/**
 * @module users/passwords
 * scrypt from node:crypto with OWASP's parameters (N=2^17, r=8, p=1), in a
 * self-describing string so the parameters can change without breaking old hashes.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { isCommonPassword } from './common-passwords.js';

const N = 2 ** 17;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 256;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem must exceed 128 * N * r bytes (128 MiB here) or scrypt refuses.
    scrypt(password, salt, KEY_LENGTH, { N: n, r, p, maxmem: 256 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/**
 * The password as it is hashed: NFKC, as NIST SP 800-63B asks, so that "café" typed as one
 * character or as "e" and a combining accent (keyboards and systems differ) is the same
 * password, as are a full-width letter and its plain form.
 */
function normalized(password: string): string {
  return password.normalize('NFKC');
}

/**
 * `scrypt$N$r$p$salt$key`, salt and key in base64url. `cost` lowers N for test fixtures
 * only; verification reads N from the hash, so real accounts keep OWASP's parameters.
 */
export async function hashPassword(password: string, cost: { N?: number } = {}): Promise<string> {
  const n = cost.N ?? N;
  const salt = randomBytes(16);
  const key = await derive(normalized(password), salt, n, R, P);
  return `scrypt$${n}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  return (await checkPassword(password, stored)) !== false;
}

/**
 * Whether the password is right: 'normalized' for a hash of its NFKC form, 'as-typed' for a
 * hash made before passwords were normalized (worth hashing again, so that the password is
 * then taken however its accents are typed), false when it is wrong.
 */
export async function checkPassword(
  password: string,
  stored: string,
): Promise<'normalized' | 'as-typed' | false> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64url');
  const expected = Buffer.from(parts[5], 'base64url');
  const matches = async (text: string) => {
    const key = await derive(text, salt, n, r, p);
    return key.length === expected.length && timingSafeEqual(key, expected);
  };
  const canonical = normalized(password);
  if (await matches(canonical)) return 'normalized';
  // A hash made before passwords were normalized is of the text as typed. The dummy hash of an
  // unknown email takes this second round too, so it costs the same whether the account exists.
  return canonical !== password && (await matches(password)) ? 'as-typed' : false;
}

// Spent on unknown emails so that they take as long to refuse as a wrong password.
let dummyHash: Promise<string> | undefined;
export async function burnPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword('warden-timing-equaliser');
  await verifyPassword(password, await dummyHash);
}

/** A reason the password is unacceptable, or null. */
export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) {
    return `must be at least ${MIN_PASSWORD_LENGTH} characters`;
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    return `must be at most ${MAX_PASSWORD_LENGTH} characters`;
  }
  if (isCommonPassword(password)) return 'is too common; choose one that is harder to guess';
  return null;
}
