/**
 * @module bench/lib/make-sessions
 * Child-process helper: `tsx bench/lib/make-sessions.ts USER_ID COUNT [expired]` adds COUNT
 * sessions of one user (live, or idle-expired an hour ago but still retained) straight through
 * the configured store (as seed-demo does), and prints their ids as JSON. Signing in a thousand times would time the password hash, not the store.
 */

import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import { openRuntime } from '../../src/runtime.js';
import { newToken, sessionIdOf } from '../../src/sessions/tokens.js';

const [userId, count] = process.argv.slice(2, 4).map(Number);
const expired = process.argv[4] === 'expired';
const config = loadConfig();
const runtime = await openRuntime(config, pino({ level: 'silent' }));
try {
  const now = runtime.clock();
  const ids: string[] = [];
  const all = Array.from({ length: count }, (_, i) => ({
    id: sessionIdOf(newToken()),
    userId,
    createdAt: now - (expired ? 7_200_000 : 0) - i,
    lastSeenAt: now - (expired ? 3_600_000 : 0),
    idleExpiresAt: now + (expired ? -1_800_000 : config.idleTimeoutMs),
    absoluteExpiresAt: now + config.absoluteLifetimeMs,
    ip: '192.0.2.10',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) bench',
  }));
  for (let i = 0; i < all.length; i += 200) {
    const chunk = all.slice(i, i + 200);
    const { store } = runtime;
    await (store.createMany
      ? store.createMany(chunk)
      : Promise.all(chunk.map((s) => store.create(s))));
    ids.push(...chunk.map((s) => s.id));
  }
  process.stdout.write(JSON.stringify(expired ? ids.length : ids));
} finally {
  await runtime.close();
}
