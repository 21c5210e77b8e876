/**
 * @module db/schema
 * Table types for Kysely. Every time is a number of milliseconds since the epoch,
 * stored as INTEGER in SQLite and BIGINT in PostgreSQL, so both dialects compare alike.
 */
import type { Generated, Insertable, Selectable } from 'kysely';

export const ROLES = ['user', 'admin', 'superuser'] as const;
export type Role = (typeof ROLES)[number];

export const USER_STATUSES = ['pending', 'approved', 'rejected', 'disabled'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];

export interface UsersTable {
  id: Generated<number>;
  /** As the person typed it. */
  email: string;
  /** NFC, lower case: what uniqueness and the email filter compare. */
  email_normalized: string;
  password_hash: string;
  role: Role;
  status: UserStatus;
  created_at: number;
  /** When the account was first approved; enabling a disabled account keeps it. */
  approved_at: number | null;
  approved_by: number | null;
  /** When the account was last rejected, and by whom (migration 0002). */
  rejected_at: number | null;
  rejected_by: number | null;
  /**
   * When the account left `pending` (approved, rejected or disabled), set once; null while
   * pending. The analytics page reads the pending queue from it (migration 0002).
   */
  decided_at: number | null;
  last_login_at: number | null;
  /** Bumped on password change, disable and role change; sessions carry the value they saw. */
  updated_at: number;
}

export interface SessionsTable {
  /** SHA-256 of the cookie token, hex. */
  id: string;
  user_id: number;
  created_at: number;
  last_seen_at: number;
  idle_expires_at: number;
  absolute_expires_at: number;
  /** min(idle, absolute): what status filters and cleanup compare. */
  expires_at: number;
  ip: string;
  user_agent: string;
}

export const SESSION_EVENT_KINDS = [
  'signed_in',
  'signed_out',
  'revoked',
  'expired',
  'cleaned_up',
] as const;
export type SessionEventKind = (typeof SESSION_EVENT_KINDS)[number];

export interface SessionEventsTable {
  id: Generated<number>;
  session_id: string;
  user_id: number;
  kind: SessionEventKind;
  /** Why it ended: signed_out, revoked, user_disabled, idle, absolute, password_changed… */
  reason: string | null;
  actor_id: number | null;
  at: number;
  ip: string | null;
  user_agent: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor_id: number | null;
  actor_email: string | null;
  action: string;
  target: string | null;
  /** JSON object: counts, ids, reasons. */
  details: string;
  ip: string | null;
  outcome: 'success' | 'partial' | 'failure' | 'refused';
  /** The hash of the row before (64 zeros for the first): the chain (migration 0003). */
  prev_hash: string | null;
  /** SHA-256 of this row's fields and prev_hash (see events/audit.ts). */
  hash: string | null;
}

/** A superuser's named filters of a console table (migration 0003). */
export interface SavedViewsTable {
  id: Generated<number>;
  owner_id: number;
  page: 'sessions' | 'users';
  name: string;
  /** The filters as a query string without `?`, validated against the page's schema. */
  query: string;
  created_at: number;
}

/** When a session last entered its password again (migration 0004, http/step-up.ts). */
export interface StepUpsTable {
  /** The session's digest. */
  session_id: string;
  at: number;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface DB {
  settings: SettingsTable;
  users: UsersTable;
  sessions: SessionsTable;
  session_events: SessionEventsTable;
  audit_log: AuditLogTable;
  saved_views: SavedViewsTable;
  step_ups: StepUpsTable;
}

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type AuditRow = Selectable<AuditLogTable>;
export type SavedViewRow = Selectable<SavedViewsTable>;
export type SessionEventRow = Selectable<SessionEventsTable>;
