/**
 * A store wrapper that adds latency to chosen calls, to open the races the cases
 * describe (a touch landing after a sign-out, a redirect racing a write).
 */
import type { SessionStore } from '../../src/sessions/session-store.js';

type Op = Exclude<keyof SessionStore, 'kind'>;

export interface Latency {
  /** Milliseconds to wait before each call of an op; change it while the test runs. */
  delays: Partial<Record<Op, number>>;
  /** Only delay calls for which this says true (all calls when unset). */
  when?: (op: Op, args: unknown[]) => boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function slowStore(inner: SessionStore, latency: Latency): SessionStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      // A slow store keeps nothing in memory: every validation goes through its delays.
      if (prop === 'peek') return undefined;
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      // Registers a listener and answers its remover at once: no call to the store to slow.
      if (prop === 'onLateCollection') return value.bind(target);
      return async (...args: unknown[]) => {
        const ms = latency.delays[prop as Op];
        if (ms && (!latency.when || latency.when(prop as Op, args))) await sleep(ms);
        return value.apply(target, args);
      };
    },
  });
}
