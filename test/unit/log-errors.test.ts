import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createLogger, everyAtMost } from '../../src/logger.js';
import { DeadlineError } from '../../src/resilience/breaker.js';
import { StoreUnavailableError } from '../../src/resilience/guarded-store.js';

/** What one `log.error({ err })` line says of the error. */
function logged(err: unknown): { message: string; type: string; stack?: string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  createLogger({ logLevel: 'info' }, sink).error({ err }, 'failed');
  return JSON.parse(lines[0]!).err;
}

describe('errors in log lines', () => {
  it("should say a wrapped cause's message once, not again after the wrapper's", () => {
    const err = new StoreUnavailableError(
      'collectSetAside',
      new DeadlineError('no answer in 10000 ms'),
    );
    const line = logged(err);
    expect(line.message).toBe(
      'session store unavailable during collectSetAside: no answer in 10000 ms',
    );
    expect(line.type).toBe('StoreUnavailableError');
  });

  it('should still append a cause the message does not name, down the chain', () => {
    const root = new Error('ECONNREFUSED 127.0.0.1:6390');
    const err = new Error('history rows not written', {
      cause: new Error('insert failed', { cause: root }),
    });
    expect(logged(err).message).toBe(
      'history rows not written: insert failed: ECONNREFUSED 127.0.0.1:6390',
    );
  });

  it("should append a cause whose message only appears inside the wrapper's", () => {
    const err = new Error('redis client is closed on shutdown', { cause: new Error('closed') });
    expect(logged(err).message).toBe('redis client is closed on shutdown: closed');
  });

  it('should log a thrown value that is no error as it is', () => {
    expect(logged('plain text')).toBe('plain text');
  });
});

describe('a line that repeats while something is down', () => {
  it('should go out at once, then once per interval for those held, and carry none over', () => {
    vi.useFakeTimers({ toFake: ['performance', 'setTimeout', 'Date'] });
    try {
      const lines: Array<[number, string]> = [];
      const lastAt: number[] = [];
      const warn = everyAtMost(10_000, (held, what: string) => {
        lines.push([held.repeats, what]);
        lastAt.push(held.lastAt);
      });
      warn('first');
      const firstAt = Date.now();
      let heldLast = 0;
      for (let i = 0; i < 379; i++) {
        vi.advanceTimersByTime(25);
        warn(`held ${i}`);
        heldLast = Date.now();
      }
      expect(lines).toEqual([[0, 'first']]);
      // The interval ends: one line for the 379 held, the last one's, saying when that was
      // (it may go out after the outage has ended).
      vi.advanceTimersByTime(10_000);
      expect(lines).toEqual([
        [0, 'first'],
        [379, 'held 378'],
      ]);
      expect(lastAt).toEqual([firstAt, heldLast]);
      expect(heldLast).toBeGreaterThan(firstAt);
      // A later outage starts afresh.
      vi.advanceTimersByTime(30_000);
      warn('next outage');
      expect(lines.at(-1)).toEqual([0, 'next outage']);
    } finally {
      vi.useRealTimers();
    }
  });
});
