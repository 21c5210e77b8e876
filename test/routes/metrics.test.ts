/**
 * GET /metrics on both stores: the Prometheus text parses (every sample under its HELP and
 * TYPE, histograms cumulative), its figures move with sign-ins, failures, sign-outs and
 * revocations, and a failing store shows as down with the breaker open. Access: loopback only
 * without METRICS_TOKEN; with it, the bearer token from anywhere, compared in full.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { makeApp, PASSWORD, storeKindsToRun, type TestApp } from '../support/app.js';
import { signedIn } from './helpers.js';

const TOKEN = 'metrics-token-0123456789abcdef';

interface Parsed {
  types: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** A strict reading of the text format: fails on any line it does not understand. */
function parse(text: string): Parsed {
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Parsed['samples'] = [];
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (help) {
      helped.add(help[1]!);
      continue;
    }
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
    if (type) {
      expect(helped.has(type[1]!), `HELP before TYPE of ${type[1]}`).toBe(true);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(
        line,
      );
    expect(sample, `a sample line: ${line}`).not.toBeNull();
    const [, name, rawLabels, value] = sample!;
    const family = name!.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(name!) || types.get(family) === 'histogram', `TYPE before ${name}`).toBe(true);
    const labels = Object.fromEntries(
      [...(rawLabels ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [
        m[1]!,
        m[2]!,
      ]),
    );
    samples.push({ name: name!, labels, value: value === '+Inf' ? Infinity : Number(value) });
  }
  return { types, samples };
}

function value(p: Parsed, name: string, labels: Record<string, string> = {}): number | undefined {
  return p.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`GET /metrics (${kind})`, () => {
    let t: TestApp;
    /** While set, the store's counts() fails, as a store that is down would. */
    let failing = false;

    beforeAll(async () => {
      t = await makeApp(kind, {
        wrapStore: (inner): SessionStore =>
          new Proxy(inner, {
            get(target, prop, receiver) {
              const member = Reflect.get(target, prop, receiver);
              if (typeof member !== 'function') return member;
              // Bound to the store itself: its methods use private fields.
              if (prop !== 'counts') return member.bind(target);
              return (...args: unknown[]) =>
                failing
                  ? Promise.reject(new Error('store down (test)'))
                  : member.apply(target, args);
            },
          }),
      });
      await t.createUser('root@example.com', 'superuser');
      await t.createUser('una@example.com', 'user');
      await t.createUser('pending@example.com', 'user', 'pending');
    });

    afterAll(async () => {
      await t?.close();
    });

    async function scrape(): Promise<Parsed> {
      const res = await t.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      return parse(res.body);
    }

    it('should answer a loopback scrape in the text format, histograms cumulative', async () => {
      await signedIn(t, 'una@example.com');
      const p = await scrape();

      expect(p.types.get('warden_sign_ins_total')).toBe('counter');
      expect(p.types.get('warden_store_call_duration_seconds')).toBe('histogram');
      expect(p.types.get('warden_sessions')).toBe('gauge');
      expect(value(p, 'warden_store_up', { store: t.store.kind })).toBe(1);
      expect(value(p, 'warden_store_circuit_state', { state: 'closed' })).toBe(1);
      expect(value(p, 'warden_store_circuit_state', { state: 'open' })).toBe(0);

      const buckets = p.samples.filter(
        (s) =>
          s.name === 'warden_store_call_duration_seconds_bucket' &&
          s.labels.op === 'create' &&
          s.labels.outcome === 'ok',
      );
      expect(buckets.at(-1)!.labels.le).toBe('+Inf');
      for (let i = 1; i < buckets.length; i++) {
        expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
      }
      const count = value(p, 'warden_store_call_duration_seconds_count', { op: 'create' });
      expect(count).toBe(buckets.at(-1)!.value);
      expect(count).toBeGreaterThanOrEqual(1);
      expect(value(p, 'warden_store_call_duration_seconds_sum', { op: 'create' })).toBeGreaterThan(
        0,
      );
    });

    it('should move with sign-ins, refused sign-ins, sign-outs and revocations', async () => {
      const before = await scrape();
      const get = (p: Parsed, name: string, labels?: Record<string, string>) =>
        value(p, name, labels) ?? 0;

      const root = await signedIn(t, 'root@example.com');
      const una = await signedIn(t, 'una@example.com');
      const leaving = await signedIn(t, 'una@example.com');
      const wrong = await t.client().postJson('/api/auth/login', {
        email: 'una@example.com',
        password: `${PASSWORD}!`,
      });
      expect(wrong.statusCode).toBe(401);
      const pending = await t.client().postJson('/api/auth/login', {
        email: 'pending@example.com',
        password: PASSWORD,
      });
      expect(pending.statusCode).toBe(403);
      expect((await leaving.client.postJson('/api/auth/logout')).statusCode).toBe(200);
      const revoke = await root.client.postJson(`/admin/sessions/revoke/${una.sessionId}`);
      expect(revoke.json().counts.revoked).toBe(1);

      const after = await scrape();
      const delta = (name: string, labels?: Record<string, string>) =>
        get(after, name, labels) - get(before, name, labels);
      expect(delta('warden_sign_ins_total')).toBe(3);
      expect(delta('warden_sign_in_failures_total', { reason: 'invalid_credentials' })).toBe(1);
      expect(delta('warden_sign_in_failures_total', { reason: 'not_approved' })).toBe(1);
      expect(delta('warden_sign_outs_total')).toBe(1);
      expect(delta('warden_session_revocations_total', { reason: 'revoked' })).toBe(1);
      // Three sign-ins, one signed out and one revoked: one more active session.
      expect(delta('warden_sessions', { status: 'active' })).toBe(1);
      const counts = await t.store.counts(Date.now());
      expect(get(after, 'warden_sessions', { status: 'active' })).toBe(counts.active);
    });

    it('should refuse a client that is not on loopback when no token is set', async () => {
      const res = await t.app.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress: '203.0.113.9',
        headers: { accept: 'application/json' },
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('WARDEN_METRICS_FORBIDDEN');
      expect(res.body).not.toContain('warden_');

      // A forged forwarding header changes nothing: the peer is still remote.
      const forged = await t.app.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress: '203.0.113.9',
        headers: { 'x-forwarded-for': '127.0.0.1' },
      });
      expect(forged.statusCode).toBe(403);
    });

    it('should report the store down and the breaker open while the store fails', async () => {
      failing = true;
      try {
        let p: Parsed | undefined;
        for (let i = 0; i < 6; i++) p = await scrape();
        expect(value(p!, 'warden_store_up', { store: t.store.kind })).toBe(0);
        expect(value(p!, 'warden_sessions', { status: 'active' })).toBeUndefined();
        expect(value(p!, 'warden_store_circuit_state', { state: 'open' })).toBe(1);
        expect(value(p!, 'warden_store_circuit_state', { state: 'closed' })).toBe(0);
        const changed = value(p!, 'warden_store_circuit_changed_timestamp_seconds')!;
        expect(Math.abs(changed - Date.now() / 1000)).toBeLessThan(30);
        expect(
          value(p!, 'warden_store_call_duration_seconds_count', { op: 'counts', outcome: 'error' }),
        ).toBeGreaterThanOrEqual(5);
      } finally {
        failing = false;
      }
    });
  });

  describe.skipIf(skip !== null)(`GET /metrics with METRICS_TOKEN (${kind})`, () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await makeApp(kind, { env: { METRICS_TOKEN: TOKEN } });
    });

    afterAll(async () => {
      await t?.close();
    });

    const scrape = (authorization?: string, remoteAddress = '203.0.113.9') =>
      t.app.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress,
        headers: authorization ? { authorization } : {},
      });

    it('should answer the bearer token from any address', async () => {
      const res = await scrape(`Bearer ${TOKEN}`);
      expect(res.statusCode).toBe(200);
      expect(parse(res.body).types.get('warden_sign_ins_total')).toBe('counter');
      expect((await scrape(`bearer ${TOKEN}`)).statusCode).toBe(200);
    });

    it('should refuse no token, a wrong one, a prefix of it, and loopback without one', async () => {
      for (const header of [
        undefined,
        `Bearer ${TOKEN}x`,
        `Bearer ${TOKEN.slice(0, -1)}`,
        `Basic ${TOKEN}`,
        TOKEN,
        'Bearer',
      ]) {
        const res = await scrape(header);
        expect(res.statusCode, String(header)).toBe(403);
        expect(res.headers['www-authenticate']).toBe('Bearer');
        expect(res.body).not.toContain('warden_sign_ins_total');
      }
      expect((await scrape(undefined, '127.0.0.1')).statusCode).toBe(403);
    });
  });
}

describe('METRICS_TOKEN', () => {
  it('should refuse a token too short to be safe, or with spaces, naming the variable', () => {
    for (const bad of ['short', 'has spaces in the middle of it']) {
      expect(() => loadConfig({ METRICS_TOKEN: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ METRICS_TOKEN: bad })).toThrow(/^METRICS_TOKEN: /);
    }
    expect(loadConfig({ METRICS_TOKEN: TOKEN }).metricsToken).toBe(TOKEN);
    expect(loadConfig({}).metricsToken).toBeUndefined();
  });
});
