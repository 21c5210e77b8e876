/**
 * The console's answers to a cleanup and to a revocation: counts as the pages write them, words
 * in agreement.
 */
import { describe, expect, it } from 'vitest';
import { cleanedUpMessage, describeCounts } from '../../src/admin/session-routes.js';

describe('cleanedUpMessage', () => {
  it('should write large counts with thousands separators, as the pages do', () => {
    expect(cleanedUpMessage(8_816, 0)).toBe('8,816 expired sessions cleaned up.');
    expect(cleanedUpMessage(1_306_357, 1_200)).toBe(
      '1,306,357 expired sessions and 1,200 unreadable entries cleaned up.',
    );
  });

  it('should agree in number with one and with none', () => {
    expect(cleanedUpMessage(1, 1)).toBe('1 expired session and 1 unreadable entry cleaned up.');
    expect(cleanedUpMessage(0, 0)).toBe('0 expired sessions cleaned up.');
  });
});

describe('describeCounts', () => {
  it('should write large counts with thousands separators, as a cleanup does', () => {
    const counts = {
      revoked: 103_523,
      already_ended: 22_086,
      not_found: 0,
      invalid: 0,
      kept_own: 1,
      failed: 0,
    };
    expect(describeCounts(counts)).toBe(
      '103,523 revoked, 22,086 already ended, 1 kept (your own session)',
    );
  });
});
