/**
 * Node reads request header bytes as latin1: a user agent sent in UTF-8 must be stored as the
 * client wrote it, and bytes that are no UTF-8 kept as read.
 */
import { describe, expect, it } from 'vitest';
import { headerText } from '../../src/http/sign-in.js';

/** What Node's parser hands over for these bytes. */
const asNodeReadsIt = (bytes: Buffer) => bytes.toString('latin1');

describe('headerText', () => {
  it('should decode a user agent sent in UTF-8', () => {
    const sent = 'Mozilla/5.0 (X11; Linux x86_64) café naïve ✓ 😀 Firefox/133.0';
    expect(headerText(asNodeReadsIt(Buffer.from(sent, 'utf8')))).toBe(sent);
  });

  it('should keep ASCII, and bytes that are no UTF-8, as read', () => {
    expect(headerText('curl/8.5.0')).toBe('curl/8.5.0');
    const latin1 = asNodeReadsIt(Buffer.from([0x63, 0x61, 0x66, 0xe9])); // "café" in latin1
    expect(headerText(latin1)).toBe('café');
    // Text that did not come from header bytes (an in-process request) is left alone.
    expect(headerText('ok ✓')).toBe('ok ✓');
  });
});
