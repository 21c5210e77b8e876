/**
 * The probes: /healthz says the process is alive without touching a store (so a store outage
 * never gets a healthy process restarted); /readyz checks the session store and the database
 * and shows the circuit, answering 503 when one does not answer. No sign-in, JSON, no cache,
 * and no driver message (with its addresses) in the answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionStore } from '../../src/sessions/session-store.js';
import { makeApp, storeKindsToRun, type TestApp } from '../support/app.js';
import { logCapture } from '../support/log-capture.js';

for (const { kind, skip } of await storeKindsToRun()) {
  describe.skipIf(skip !== null)(`health probes (${kind})`, () => {
    let t: TestApp;
    const fault = { on: false, calls: 0 };
    const { stream, lines } = logCapture();

    beforeAll(async () => {
      t = await makeApp(kind, {
        logStream: stream,
        wrapStore: (inner): SessionStore =>
          new Proxy(inner, {
            get(target, prop, receiver) {
              // Every call must reach the fault, so nothing is answered from memory.
              if (prop === 'peek') return undefined;
              const value = Reflect.get(target, prop, receiver);
              if (typeof value !== 'function') return value;
              return (...args: unknown[]) => {
                fault.calls += 1;
                if (fault.on)
                  return Promise.reject(new Error('connect ECONNREFUSED 10.1.2.3:6379'));
                return value.apply(target, args);
              };
            },
          }),
      });
    });

    afterAll(async () => {
      fault.on = false;
      await t?.close();
    });

    it('should say ready with both stores and a closed circuit', async () => {
      const res = await t.app.inject({ url: '/readyz' });

      expect(res.statusCode).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.json()).toMatchObject({
        status: 'ready',
        sessionStore: { kind: t.store.kind, ok: true, circuit: { state: 'closed' } },
        database: { kind: t.database.dialect, ok: true },
      });
      expect(res.json().sessionStore.latencyMs).toBeGreaterThanOrEqual(0);
    });

    it('should answer /healthz without touching a store, even with a cookie and the store down', async () => {
      fault.on = true;
      const before = fault.calls;
      const res = await t.app.inject({
        url: '/healthz',
        headers: { cookie: `warden_session=${'a'.repeat(43)}` },
      });
      fault.on = false;

      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'ok' });
      expect(fault.calls).toBe(before);
    });

    it('should answer 503 from /readyz when the session store fails, naming the kind of failure only', async () => {
      fault.on = true;
      const res = await t.app.inject({ url: '/readyz' });
      fault.on = false;

      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({
        status: 'not_ready',
        sessionStore: { ok: false, latencyMs: null, error: 'unreachable' },
        database: { ok: true },
      });
      expect(res.body).not.toContain('10.1.2.3');
      expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
      // One line, with the kind of failure and its message: no stack of a ping that failed.
      const logged = lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'not_ready');
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({
        what: 'session store',
        error: 'unreachable',
        reason: expect.stringContaining('ECONNREFUSED'),
      });
      expect(JSON.stringify(logged[0])).not.toContain('    at ');
    });
  });
}
