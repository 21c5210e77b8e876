/**
 * @module users/user-service
 * Registration, credential checks and the approval workflow.
 */
import type { Role, UserRow } from '../db/schema.js';
import { WardenError } from '../errors.js';
import { emailProblem } from './email.js';
import { burnPasswordCheck, checkPassword, hashPassword, passwordProblem } from './passwords.js';
import type { UserRepo } from './user-repo.js';

export class UserService {
  readonly #repo: UserRepo;
  readonly #clock: () => number;

  constructor(repo: UserRepo, clock: () => number) {
    this.#repo = repo;
    this.#clock = clock;
  }

  get repo(): UserRepo {
    return this.#repo;
  }

  /** Creates an account; registration makes a pending user unless told otherwise. */
  async register(input: {
    email: string;
    password: string;
    role?: Role;
    status?: 'pending' | 'approved';
    approvedBy?: number | null;
  }): Promise<UserRow> {
    const emailIssue = emailProblem(input.email);
    if (emailIssue)
      throw new WardenError('WARDEN_VALIDATION', [`email ${emailIssue}`], { field: 'email' });
    const passwordIssue = passwordProblem(input.password);
    if (passwordIssue) {
      throw new WardenError('WARDEN_VALIDATION', [`password ${passwordIssue}`], {
        field: 'password',
      });
    }

    return this.#repo.create({
      email: input.email,
      passwordHash: await hashPassword(input.password),
      role: input.role ?? 'user',
      status: input.status ?? 'pending',
      now: this.#clock(),
      approvedBy: input.approvedBy ?? null,
    });
  }

  /**
   * The user these credentials belong to, if they may sign in. An unknown email costs
   * the same hashing as a wrong password, and both get the same answer.
   */
  async verifyCredentials(email: string, password: string): Promise<UserRow> {
    const user = await this.#repo.findByEmail(email);
    if (!user) {
      await burnPasswordCheck(password);
      throw new WardenError('WARDEN_AUTH_INVALID_CREDENTIALS', ['email or password']);
    }
    const checked = await checkPassword(password, user.password_hash);
    if (checked === false) {
      throw new WardenError('WARDEN_AUTH_INVALID_CREDENTIALS', ['email or password']);
    }
    if (checked === 'as-typed') {
      // Hashed again in its normalized form, once: from now on it is taken however its
      // accents are typed. A sign-in does not fail for it; the next one tries again.
      await this.#repo
        .setPassword(user.id, await hashPassword(password), this.#clock())
        .catch(() => undefined);
    }
    if (user.status !== 'approved') {
      const what = user.status === 'pending' ? 'waiting for approval' : user.status;
      throw new WardenError('WARDEN_AUTH_NOT_APPROVED', [what], { status: user.status });
    }
    return user;
  }
}
