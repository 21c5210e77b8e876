import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Availability, gate, selectedStores } from './services.js';

const down = async (): Promise<Availability> => ({ ok: false, reason: 'Redis is not reachable' });
const up = async (): Promise<Availability> => ({ ok: true });

describe('service gate', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('should run a suite whose service answers', async () => {
    expect(await gate('suite', up, {})).toEqual({ action: 'run' });
  });

  it('should skip with a loud warning when a service is missing', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});

    expect(await gate('suite', down, {})).toEqual({
      action: 'skip',
      reason: 'Redis is not reachable',
    });
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('SKIPPING suite'));
  });

  it('should fail instead of skipping when WARDEN_REQUIRE_SERVICES=1', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});

    expect(await gate('suite', down, { WARDEN_REQUIRE_SERVICES: '1' })).toEqual({
      action: 'fail',
      reason: 'Redis is not reachable',
    });
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('STORES', () => {
  const known = ['sql-sqlite', 'sql-postgres', 'redis'] as const;

  it('should select every store when unset', () => {
    expect(selectedStores(known, {})).toEqual([...known]);
  });

  it('should narrow to the named stores, in the known order', () => {
    expect(selectedStores(known, { STORES: ' redis, sql-sqlite ' })).toEqual([
      'sql-sqlite',
      'redis',
    ]);
  });

  it("should run none of this suite's stores when STORES names only another suite's", () => {
    expect(selectedStores(known, { STORES: 'redis+postgres' })).toEqual([]);
  });

  it('should refuse a name no suite knows rather than run nothing', () => {
    expect(() => selectedStores(known, { STORES: 'redsi' })).toThrow(/unknown stores: redsi/);
  });
});
