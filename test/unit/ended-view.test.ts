import { describe, expect, it } from 'vitest';
import { actorLabel } from '../../src/admin/ended-view.js';

describe('who ended a session, as the Ended tab and its export name them', () => {
  const row = (kind: string, reason: string | null, actorId: number | null = null) =>
    actorLabel({
      kind: kind as never,
      reason,
      actorId,
      actorEmail: actorId === null ? null : 'root@example.test',
    });

  it('should name the superuser who ended it, and an actor since deleted by id', () => {
    expect(row('revoked', 'revoked', 7)).toBe('root@example.test');
    expect(actorLabel({ kind: 'revoked', reason: 'revoked', actorId: 9, actorEmail: null })).toBe(
      '(deleted user 9)',
    );
  });

  it('should name the command line for what an operator ended with the warden command', () => {
    // `warden sessions revoke` and `warden create-superuser` resetting a password.
    expect(row('revoked', 'revoked')).toBe('the command line');
    expect(row('revoked', 'password_changed')).toBe('the command line');
  });

  it('should name Warden for what nobody asked for, and the user for a sign-out', () => {
    expect(row('revoked', 'evicted_by_limit')).toBe('Warden');
    expect(row('cleaned_up', 'idle')).toBe('Warden');
    expect(row('expired', 'absolute')).toBe('Warden');
    expect(row('signed_out', 'signed_out')).toBe('the user');
  });
});
