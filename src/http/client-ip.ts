/**
 * @module http/client-ip
 * One spelling per address. Behind a trusted proxy the address is the text of
 * `X-Forwarded-For`, which may write one IPv6 address many ways (`0000:…:0001`, `::1`) or an
 * IPv4 client as IPv6 (`::ffff:203.0.113.9`); stored as sent, the console would show one
 * client as several, and a search for `203.0.113.9` would miss it. Addresses are kept as the
 * sessions, the audit log and the log lines record them: IPv4 dotted, IPv6 in RFC 5952's
 * compressed lowercase form.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { FastifyRequest } from 'fastify';

const MAPPED_V4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * What stands for a client whose address is no IP address: a trusted proxy passes on what the
 * client wrote in `X-Forwarded-For` (under TRUST_PROXY=true, anything at all), and that text
 * must not become a session's or an audit row's address (8,000 characters of it once widened
 * the sessions table by 68,000 px).
 */
export const UNKNOWN_IP = 'unknown';

/** The canonical text of an IP address; anything that is no address is UNKNOWN_IP. */
export function canonicalIp(raw: string): string {
  if (isIPv4(raw)) return raw;
  // A dual-stack socket's usual form, asked on every logged request: no URL to parse.
  if (raw.startsWith('::ffff:') && isIPv4(raw.slice(7))) return raw.slice(7);
  if (!isIPv6(raw) || raw.length > 64) return raw === '' ? '' : UNKNOWN_IP;
  let compressed: string;
  try {
    // The URL parser writes an IPv6 host compressed and lowercase (RFC 5952), a mapped IPv4
    // address in hex: `::ffff:cb00:7109`.
    compressed = new URL(`http://[${raw}]/`).hostname.slice(1, -1);
  } catch {
    return raw; // A zone index (`fe80::1%eth0`) is no URL host.
  }
  const mapped = MAPPED_V4.exec(compressed);
  if (!mapped) return compressed;
  const high = Number.parseInt(mapped[1]!, 16);
  const low = Number.parseInt(mapped[2]!, 16);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/** The client's address (`request.ip`, through the trusted proxies), canonical. */
export function clientIp(request: FastifyRequest): string {
  return canonicalIp(request.ip ?? '');
}
