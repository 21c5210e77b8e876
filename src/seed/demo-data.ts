/**
 * @module seed/demo-data
 * Lists and small generators behind the demo data: names, browsers, addresses. Every
 * address is from the ranges set aside for documentation (RFC 5737 and RFC 3849) and every
 * email is under `example.test` (RFC 2606): the demo data is stored, never contacted.
 */

export const DEMO_EMAIL_DOMAIN = 'example.test';

// biome-ignore format: a name table reads better packed than one name per line
export const FIRST_NAMES = [
  'ada', 'alan', 'amara', 'anna', 'arjun', 'beatriz', 'carlos', 'chen', 'chloe', 'daniel',
  'elena', 'emma', 'farah', 'felix', 'grace', 'hana', 'hugo', 'ines', 'ivan', 'james',
  'jonas', 'kai', 'keiko', 'lars', 'leila', 'liam', 'lucia', 'mateo', 'maya', 'mei',
  'mohammed', 'nadia', 'noah', 'olga', 'omar', 'priya', 'rafael', 'sara', 'sofia', 'tariq',
  'thomas', 'yuki', 'zanele', 'zoe',
] as const;

// biome-ignore format: a name table reads better packed than one name per line
export const LAST_NAMES = [
  'adeyemi', 'andersson', 'baker', 'bianchi', 'costa', 'dubois', 'fernandez', 'fischer',
  'garcia', 'hansen', 'haddad', 'ito', 'jensen', 'kowalski', 'kumar', 'larsen', 'lee',
  'martin', 'mendes', 'moreau', 'muller', 'nakamura', 'novak', 'okafor', 'olsen', 'patel',
  'petrov', 'rossi', 'santos', 'schmidt', 'silva', 'singh', 'smith', 'tanaka', 'taylor',
  'nguyen', 'wang', 'wilson', 'yilmaz', 'zhang',
] as const;

/**
 * Real User-Agent strings of current browsers, each with a weight roughly like its share of
 * traffic, so the console's browser and OS breakdowns look like a real fleet's.
 */
export const USER_AGENTS: readonly { ua: string; weight: number }[] = [
  // Chrome
  {
    weight: 24,
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  },
  {
    weight: 10,
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  },
  {
    weight: 4,
    ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36',
  },
  {
    weight: 12,
    ua: 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
  },
  {
    weight: 3,
    ua: 'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.118 Mobile Safari/537.36',
  },
  {
    weight: 3,
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1',
  },
  // Firefox
  {
    weight: 5,
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
  },
  {
    weight: 2,
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0',
  },
  { weight: 3, ua: 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0' },
  {
    weight: 1,
    ua: 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0',
  },
  { weight: 1, ua: 'Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0' },
  {
    weight: 1,
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15',
  },
  // Safari
  {
    weight: 6,
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15',
  },
  {
    weight: 12,
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1',
  },
  {
    weight: 3,
    ua: 'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  },
  {
    weight: 2,
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1',
  },
  // Edge
  {
    weight: 5,
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
  },
  {
    weight: 1,
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
  },
  {
    weight: 1,
    ua: 'Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 EdgA/124.0.2478.64',
  },
  {
    weight: 1,
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/124.2478.71 Mobile/15E148 Safari/605.1.15',
  },
];

/** The three IPv4 documentation networks (RFC 5737), as /24 prefixes. */
export const IPV4_DOC_PREFIXES = ['192.0.2', '198.51.100', '203.0.113'] as const;

/** Share of addresses that are IPv6, from 2001:db8::/32 (RFC 3849). */
const IPV6_SHARE = 0.2;

/** A random element. */
export function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)];
}

/**
 * A weighted chooser, built once: maps a number in [0, 1) (random by default) to an entry,
 * in O(log n) over cumulative weights. A fixed number gives a fixed entry.
 */
export function weighted<T>(entries: readonly { value: T; weight: number }[]): (r?: number) => T {
  const cumulative: number[] = [];
  let sum = 0;
  for (const e of entries) {
    sum += e.weight;
    cumulative.push(sum);
  }
  return (r = Math.random()) => {
    const target = r * sum;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return entries[lo].value;
  };
}

/** A well-mixed 32-bit hash of an integer, so a user's "usual" device and address are stable. */
export function mix32(n: number): number {
  let x = Math.imul(n ^ (n >>> 16), 0x45d9f3b);
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** An address from the documentation ranges picked by a 32-bit number. */
export function docAddress(bits: number): string {
  if ((bits % 1000) / 1000 < IPV6_SHARE) {
    const hex = (n: number) => (n & 0xffff).toString(16);
    return `2001:db8:${hex(bits >>> 16)}:${hex(bits)}::${hex(bits >>> 8) || '1'}`;
  }
  const prefix = IPV4_DOC_PREFIXES[bits % IPV4_DOC_PREFIXES.length];
  return `${prefix}.${1 + ((bits >>> 8) % 254)}`;
}
