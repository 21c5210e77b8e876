/**
 * One spelling per client address: what a trusted proxy forwards is kept in its canonical form,
 * so one client is one address in the console, the audit log and the sign-in limits.
 */
import { describe, expect, it } from 'vitest';
import { canonicalIp } from '../../src/http/client-ip.js';

describe('canonicalIp', () => {
  it('should write an IPv4 client given as IPv6 the way IPv4 is written', () => {
    expect(canonicalIp('::ffff:203.0.113.254')).toBe('203.0.113.254');
    expect(canonicalIp('0000:0000:0000:0000:0000:ffff:192.168.100.200')).toBe('192.168.100.200');
    expect(canonicalIp('::FFFF:C0A8:64C8')).toBe('192.168.100.200');
  });

  it('should compress IPv6 and write it in lowercase (RFC 5952)', () => {
    expect(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(canonicalIp('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(canonicalIp('2001:db8:85a3:1319:8a2e:370:7348:1234')).toBe(
      '2001:db8:85a3:1319:8a2e:370:7348:1234',
    );
  });

  it('should leave IPv4 and zone indexes as they are', () => {
    expect(canonicalIp('198.51.100.7')).toBe('198.51.100.7');
    expect(canonicalIp('fe80::1%eth0')).toBe('fe80::1%eth0');
    expect(canonicalIp('')).toBe('');
  });

  it('should write anything that is no address as "unknown", however long', () => {
    for (const junk of [
      'abc',
      '<script>alert(1)</script>',
      '203.0.113.9:5555',
      '[2001:db8::1]',
      '203.0.113.011',
      'a'.repeat(8_000),
      `fe80::1%${'x'.repeat(100)}`,
    ]) {
      expect(canonicalIp(junk), junk.slice(0, 30)).toBe('unknown');
    }
  });
});
