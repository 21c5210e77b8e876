/**
 * @module admin/user-agent
 * Browser and OS names from a User-Agent header, through ua-parser-js 1.x (MIT).
 * A small cache keeps a page of 50 rows from parsing the same few strings again.
 */
import { UAParser } from 'ua-parser-js';

export interface Client {
  browser: string;
  os: string;
}

const CACHE_LIMIT = 2_000;
const cache = new Map<string, Client>();

function label(name: string | undefined, version: string | undefined): string {
  if (!name) return 'Unknown';
  const major = version?.split('.')[0];
  return major ? `${name} ${major}` : name;
}

export function parseUserAgent(ua: string): Client {
  const hit = cache.get(ua);
  if (hit) return hit;

  const result = new UAParser(ua).getResult();
  const client = {
    browser: label(result.browser.name, result.browser.version),
    os: label(result.os.name, result.os.version),
  };
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(ua, client);
  return client;
}

const DEVICE_TYPES: Record<string, string> = {
  mobile: 'Phone',
  tablet: 'Tablet',
  smarttv: 'TV',
  console: 'Game console',
  wearable: 'Wearable',
  embedded: 'Embedded device',
};
const devices = new Map<string, string>();

/** "Apple iPhone", "Tablet", "Computer": what kind of device sent this header. */
export function parseDevice(ua: string): string {
  const hit = devices.get(ua);
  if (hit) return hit;

  const result = new UAParser(ua).getResult();
  const { vendor, model, type } = result.device;
  // Desktop browsers name no device type; a known desktop OS means a computer.
  const device = model
    ? [vendor, model].filter(Boolean).join(' ')
    : ((type && DEVICE_TYPES[type]) ?? (result.os.name ? 'Computer' : 'Unknown device'));
  if (devices.size >= CACHE_LIMIT) devices.delete(devices.keys().next().value as string);
  devices.set(ua, device);
  return device;
}
