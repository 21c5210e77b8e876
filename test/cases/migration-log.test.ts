/**
 * An upgrade changes the schema when Warden starts (`serve` migrates first): the log says which
 * migrations it applied, so an operator can tell what a start did to the database.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openRuntime } from '../../src/runtime.js';

describe('migrations on start', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('should log each migration it applies, and none once the schema is up to date', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-migrations-'));
    const config = loadConfig({ DATABASE_URL: path.join(dir, 'warden.db') });
    const lines: Array<{ event?: string; migration?: string }> = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    const applied = () =>
      lines.filter((l) => l.event === 'migration_applied').map((l) => l.migration);

    await (await openRuntime(config, logger)).close();
    expect(applied()[0]).toMatch(/^0001_/);
    expect(applied()).toContain('0012_history_by_sign_in');

    lines.length = 0;
    await (await openRuntime(config, logger)).close();
    expect(applied()).toEqual([]);
  });
});
