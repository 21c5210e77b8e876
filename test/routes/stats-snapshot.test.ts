/**
 * The statistics snapshots: served as they are while fresh, taken again once stale (a slow
 * refresh answered with the previous figures and the time they were taken), kept longer when
 * they were costly, kept through a failure with its reason, and dropped by invalidate().
 */
import { describe, expect, it } from 'vitest';
import { CachedFigure } from '../../src/admin/stats-snapshot.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A computation the test controls: each call returns the next number after `delayMs`. */
function counter(opts: { delayMs?: number; fail?: () => boolean } = {}) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    compute: async () => {
      calls += 1;
      const n = calls;
      if (opts.delayMs) await sleep(opts.delayMs);
      if (opts.fail?.()) throw new Error(`store down (call ${n})`);
      return n;
    },
  };
}

describe('CachedFigure', () => {
  it('should compute once, then serve the same figures while they are fresh', async () => {
    const c = counter();
    let now = 1_000;
    const figure = new CachedFigure(c.compute, { maxAgeMs: 200, clock: () => now });

    const first = await figure.get();
    now = 2_000;
    const second = await figure.get();

    expect(first).toMatchObject({ data: 1, takenAt: 1_000, error: null });
    expect(second).toBe(first);
    expect(c.calls).toBe(1);
  });

  it('should take the figures again once they are older than the maximum age', async () => {
    const c = counter();
    const figure = new CachedFigure(c.compute, { maxAgeMs: 30, clock: Date.now });
    await figure.get();

    await sleep(40);

    expect((await figure.get()).data).toBe(2);
  });

  it('should answer with the previous figures while a slow refresh runs, then with the new', async () => {
    const c = counter({ delayMs: 80 });
    const figure = new CachedFigure(c.compute, {
      maxAgeMs: 100,
      dutyFactor: 0,
      waitMs: 5,
      clock: Date.now,
    });
    expect((await figure.get()).data).toBe(1);
    await sleep(110);

    const during = await figure.get();
    expect(during.data).toBe(1);
    const alsoDuring = await figure.get();
    expect(alsoDuring.data).toBe(1);
    await sleep(100);

    expect((await figure.get()).data).toBe(2);
    expect(c.calls).toBe(2);
  });

  it('should wait for the refresh when the figures are more than twice their lifetime old', async () => {
    // Windows of hundreds of milliseconds: a loaded machine's timers may run late by that much
    // less (with 30 ms figures, a sleep of 40 ran past 60 in a CI run beside other work).
    const c = counter({ delayMs: 80 });
    const figure = new CachedFigure(c.compute, {
      maxAgeMs: 300,
      dutyFactor: 0,
      waitMs: 5,
      clock: Date.now,
    });
    expect((await figure.get()).data).toBe(1);
    // 700 ms later: more than 2 × 300 ms, so the figures would mislead; the request waits.
    await sleep(700);
    expect((await figure.get()).data).toBe(2);
    // Barely stale (between 300 and 600 ms): answered at once with what there is, the refresh
    // going on behind.
    await sleep(400);
    expect((await figure.get()).data).toBe(2);
    await sleep(300);
    expect(c.calls).toBe(3);
  });

  it('should keep costly figures for a multiple of what they cost', async () => {
    const c = counter({ delayMs: 20 });
    const figure = new CachedFigure(c.compute, { maxAgeMs: 1, dutyFactor: 10, clock: Date.now });
    await figure.get();

    // At least 20 ms × 10 = 200 ms: still the first figures after 50 ms.
    await sleep(50);

    expect((await figure.get()).data).toBe(1);
    expect(c.calls).toBe(1);
  });

  it('should keep the last figures and say why a refresh failed', async () => {
    let down = false;
    const c = counter({ fail: () => down });
    const figure = new CachedFigure(c.compute, { maxAgeMs: 10, clock: Date.now });
    await figure.get();
    down = true;
    await sleep(15);

    const failed = await figure.get();

    expect(failed.data).toBe(1);
    expect(failed.error).toBe('store down (call 2)');
    down = false;
    await sleep(15);
    expect(await figure.get()).toMatchObject({ data: 3, error: null });
  });

  it('should report no figures and the reason when the very first computation fails', async () => {
    const figure = new CachedFigure(
      async () => {
        throw new Error('nothing to read');
      },
      { maxAgeMs: 1_000, clock: Date.now },
    );
    expect(await figure.get()).toEqual({
      takenAt: null,
      tookMs: 0,
      data: null,
      error: 'nothing to read',
    });
  });

  it('should take the figures again at once after invalidate()', async () => {
    const c = counter();
    const figure = new CachedFigure(c.compute, { maxAgeMs: 60_000, clock: Date.now });
    await figure.get();

    figure.invalidate();

    expect((await figure.get()).data).toBe(2);
  });

  it('should run one refresh at a time however many requests ask', async () => {
    const c = counter({ delayMs: 30 });
    const figure = new CachedFigure(c.compute, { maxAgeMs: 1_000, clock: Date.now });

    const answers = await Promise.all(Array.from({ length: 10 }, () => figure.get()));

    expect(c.calls).toBe(1);
    expect(new Set(answers.map((a) => a.data))).toEqual(new Set([1]));
  });
});
