import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  isSessionId,
  isWellFormedToken,
  newToken,
  sessionIdOf,
} from '../../src/sessions/tokens.js';

describe('tokens', () => {
  it('should make 256-bit base64url tokens that never repeat', () => {
    const seen = new Set(Array.from({ length: 1000 }, newToken));
    expect(seen.size).toBe(1000);
    for (const t of seen) {
      expect(isWellFormedToken(t)).toBe(true);
      expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    }
  });

  it('should key a session by the SHA-256 hex of its token', () => {
    const t = newToken();
    const id = sessionIdOf(t);
    expect(id).toBe(createHash('sha256').update(t).digest('hex'));
    expect(isSessionId(id)).toBe(true);
    expect(isSessionId(t)).toBe(false);
  });
});
