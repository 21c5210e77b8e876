/**
 * The list of sessions a failed sign-in may have left: retried until the store answers a
 * delete for them, bounded in size, and forgetting sessions whose deadline has passed.
 */
import { describe, expect, it } from 'vitest';
import { PendingDeletes } from '../../src/resilience/pending-deletes.js';
import type { DeleteOutcome } from '../../src/sessions/session-store.js';
import { waitFor } from './harness.js';

function fakeStore() {
  const state = { down: true, stored: new Set<string>(), sent: [] as string[][] };
  return {
    state,
    store: {
      async deleteMany(ids: readonly string[]) {
        state.sent.push([...ids]);
        if (state.down) throw new Error('connect ECONNREFUSED');
        const out = new Map<string, DeleteOutcome>();
        for (const id of ids) out.set(id, state.stored.delete(id) ? 'deleted' : 'not_found');
        return out;
      },
    },
  };
}

describe('pending deletes of failed sign-ins', () => {
  it('should retry while the store is down and stop once it has answered for each id', async () => {
    const { state, store } = fakeStore();
    const flushed: { deleted: number; left: number }[] = [];
    const pending = new PendingDeletes({
      store,
      clock: Date.now,
      intervalMs: 20,
      onFlush: (r) => flushed.push(r),
    });
    state.stored.add('a');
    pending.add('a', Date.now() + 60_000);
    pending.add('b', Date.now() + 60_000);

    await waitFor(() => state.sent.length >= 3, 2_000, 'retries');
    expect(pending.size).toBe(2);
    state.down = false;
    await waitFor(() => pending.size === 0, 2_000, 'the list to empty');

    expect(state.stored.has('a')).toBe(false);
    // Told once, when the store answered; not of every refused round before.
    expect(flushed).toEqual([{ deleted: 1, left: 0 }]);
    const rounds = state.sent.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(state.sent.length).toBe(rounds);
    await pending.stop();
  });

  it('should keep at most `max` ids, dropping the oldest, and forget those past their deadline', async () => {
    const { state, store } = fakeStore();
    const dropped: string[] = [];
    const pending = new PendingDeletes({
      store,
      clock: Date.now,
      max: 3,
      intervalMs: 60_000,
      onDrop: (id) => dropped.push(id),
    });
    for (const id of ['a', 'b', 'c', 'd']) pending.add(id, Date.now() + 60_000);
    pending.add('old', Date.now() - 1);

    expect(dropped).toEqual(['a', 'b']);
    state.down = false;
    await pending.flush();
    expect(state.sent).toEqual([['c', 'd']]);
    expect(pending.size).toBe(0);
    await pending.stop();
  });
});
