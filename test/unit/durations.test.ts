/**
 * Durations shown to people: the policy's short form and the sentence form the step-up page
 * uses (`STEP_UP_WINDOW=3s` was told as "1 minute").
 */
import { describe, expect, it } from 'vitest';
import { describeMs, spellMs } from '../../src/sessions/policy.js';

describe('durations in words', () => {
  it.each([
    [3_000, '3 s', '3 seconds'],
    [1_000, '1 s', '1 second'],
    [90_000, '90 s', '90 seconds'],
    [300_000, '5 min', '5 minutes'],
    [3_600_000, '1 h', '1 hour'],
    [172_800_000, '2 d', '2 days'],
    [1_500, '1500 ms', '1500 milliseconds'],
  ])('should put %i ms as "%s" and "%s"', (ms, short, spelled) => {
    expect(describeMs(ms)).toBe(short);
    expect(spellMs(ms)).toBe(spelled);
  });
});
