/**
 * The exposition text itself, independent of Warden's figures: label values escaped, help on
 * one line, histograms cumulative with +Inf, counters that refuse to go down, and names that
 * Prometheus would reject refused at registration.
 */
import { describe, expect, it } from 'vitest';
import { sameSecret } from '../../src/metrics/metrics-routes.js';
import { Counter, Gauge, Histogram, Registry } from '../../src/metrics/registry.js';

describe('Prometheus text format', () => {
  it('should escape label values and help text', () => {
    const r = new Registry();
    const c = r.add(new Counter('x_total', 'Line one\nline two \\ end.', ['reason']));
    c.inc({ reason: 'say "hi"\\\nbye' });

    expect(r.render()).toBe(
      [
        '# HELP x_total Line one\\nline two \\\\ end.',
        '# TYPE x_total counter',
        'x_total{reason="say \\"hi\\"\\\\\\nbye"} 1',
        '',
      ].join('\n'),
    );
  });

  it('should show an unlabelled counter at 0 before its first event', () => {
    const r = new Registry();
    r.add(new Counter('starts_total', 'Starts.'));
    expect(r.render()).toContain('\nstarts_total 0\n');
  });

  it('should write cumulative buckets, +Inf, sum and count per label set', () => {
    const r = new Registry();
    const h = r.add(new Histogram('lat_seconds', 'Latency.', [0.1, 1], ['op']));
    for (const v of [0.05, 0.1, 0.5, 3]) h.observe({ op: 'get' }, v);

    expect(r.render().split('\n').slice(2, -1)).toEqual([
      'lat_seconds_bucket{op="get",le="0.1"} 2',
      'lat_seconds_bucket{op="get",le="1"} 3',
      'lat_seconds_bucket{op="get",le="+Inf"} 4',
      'lat_seconds_sum{op="get"} 3.65',
      'lat_seconds_count{op="get"} 4',
    ]);
  });

  it('should read gauges at render time', () => {
    let n = 1;
    const r = new Registry();
    const g = new Gauge('g', 'A gauge.', () => [{ labels: { k: 'v' }, value: n }]);
    expect(r.render([g])).toContain('g{k="v"} 1\n');
    n = 2;
    expect(r.render([g])).toContain('g{k="v"} 2\n');
  });

  it('should refuse a counter going down, bad names and a metric registered twice', () => {
    const r = new Registry();
    const c = r.add(new Counter('ok_total', 'Ok.'));
    expect(() => c.inc({}, -1)).toThrow(RangeError);
    expect(() => new Counter('bad-name', 'Bad.')).toThrow(/not valid/);
    expect(() => new Counter('ok2_total', 'Ok.', ['__reserved'])).toThrow(/not valid/);
    expect(() => new Histogram('h', 'H.', [1, 0.5])).toThrow(/ascending/);
    expect(() => r.add(new Counter('ok_total', 'Again.'))).toThrow(/twice/);
  });
});

describe('sameSecret', () => {
  it('should accept only the exact token, whatever the lengths', () => {
    expect(sameSecret('a-long-token-value', 'a-long-token-value')).toBe(true);
    expect(sameSecret('a-long-token-valu', 'a-long-token-value')).toBe(false);
    expect(sameSecret('a-long-token-valuex', 'a-long-token-value')).toBe(false);
    expect(sameSecret('', 'a-long-token-value')).toBe(false);
  });
});
