/**
 * @module metrics/registry
 * Counters, gauges and histograms kept in this process, written out in the Prometheus text
 * exposition format (version 0.0.4). The format is a few lines of text per sample, so a
 * client library would bring more than it saves.
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/
 */

export type Labels = Record<string, string>;

/** What every metric gives the registry: its name, help, type and current samples. */
interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  samples(): Sample[];
}

interface Sample {
  /** The metric name plus a suffix (`_bucket`, `_sum`, `_count`) for histograms. */
  name: string;
  labels: Labels;
  value: number;
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkName(name: string, labelNames: readonly string[]): void {
  if (!NAME_RE.test(name)) throw new Error(`metric name "${name}" is not valid in Prometheus`);
  for (const label of labelNames) {
    if (!LABEL_RE.test(label) || label.startsWith('__')) {
      throw new Error(`label name "${label}" of ${name} is not valid in Prometheus`);
    }
  }
}

/** One key per label set, in the order the metric declared its label names. */
// Label values are short names from the code; a control character cannot occur in them.
function keyOf(labelNames: readonly string[], labels: Labels): string {
  let key = '';
  for (const name of labelNames) key += `${labels[name] ?? ''}\u0001`;
  return key;
}

/** A value that only goes up, per label set. */
export class Counter implements Metric {
  readonly type = 'counter';
  readonly #values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {
    checkName(name, labelNames);
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.name} cannot go down (${by})`);
    const key = keyOf(this.labelNames, labels);
    const entry = this.#values.get(key);
    if (entry) entry.value += by;
    else this.#values.set(key, { labels: pick(this.labelNames, labels), value: by });
  }

  /** The current value for a label set (0 when never counted). */
  get(labels: Labels = {}): number {
    return this.#values.get(keyOf(this.labelNames, labels))?.value ?? 0;
  }

  samples(): Sample[] {
    // An unlabelled counter is shown at 0 before its first event, so rate() has a start.
    if (this.#values.size === 0 && this.labelNames.length === 0) {
      return [{ name: this.name, labels: {}, value: 0 }];
    }
    return [...this.#values.values()].map((e) => ({ name: this.name, ...e }));
  }
}

/** A value read when the metrics are collected. */
export class Gauge implements Metric {
  readonly type = 'gauge';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => Array<{ labels?: Labels; value: number }>,
  ) {
    checkName(name, []);
  }

  samples(): Sample[] {
    return this.read().map((s) => ({ name: this.name, labels: s.labels ?? {}, value: s.value }));
  }
}

/** Observations counted into cumulative buckets, per label set. */
export class Histogram implements Metric {
  readonly type = 'histogram';
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending; `+Inf` is added. */
    readonly buckets: readonly number[],
    readonly labelNames: readonly string[] = [],
  ) {
    checkName(name, [...labelNames, 'le']);
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) {
      throw new Error(`buckets of ${name} must be ascending`);
    }
  }

  observe(labels: Labels, value: number): void {
    const key = keyOf(this.labelNames, labels);
    let series = this.#series.get(key);
    if (!series) {
      series = {
        labels: pick(this.labelNames, labels),
        counts: new Array(this.buckets.length + 1).fill(0),
        sum: 0,
      };
      this.#series.set(key, series);
    }
    const i = this.buckets.findIndex((b) => value <= b);
    series.counts[i === -1 ? this.buckets.length : i]! += 1;
    series.sum += value;
  }

  samples(): Sample[] {
    const out: Sample[] = [];
    for (const { labels, counts, sum } of this.#series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += counts[i]!;
        out.push({
          name: `${this.name}_bucket`,
          labels: { ...labels, le: String(le) },
          value: cumulative,
        });
      });
      cumulative += counts[this.buckets.length]!;
      out.push({
        name: `${this.name}_bucket`,
        labels: { ...labels, le: '+Inf' },
        value: cumulative,
      });
      out.push({ name: `${this.name}_sum`, labels, value: sum });
      out.push({ name: `${this.name}_count`, labels, value: cumulative });
    }
    return out;
  }
}

function pick(names: readonly string[], labels: Labels): Labels {
  return Object.fromEntries(names.map((n) => [n, labels[n] ?? '']));
}

/** Label values escape backslash, double quote and newline; help text backslash and newline. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function formatSample(s: Sample): string {
  const pairs = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  const labels = pairs.length > 0 ? `{${pairs.join(',')}}` : '';
  return `${s.name}${labels} ${formatValue(s.value)}`;
}

/** The content type Prometheus expects for this format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class Registry {
  readonly #metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    if (this.#metrics.some((m) => m.name === metric.name)) {
      throw new Error(`metric ${metric.name} is registered twice`);
    }
    this.#metrics.push(metric);
    return metric;
  }

  /** Every metric as exposition text; `extra` are metrics read for this scrape only. */
  render(extra: readonly Metric[] = []): string {
    const lines: string[] = [];
    for (const m of [...this.#metrics, ...extra]) {
      lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
      for (const s of m.samples()) lines.push(formatSample(s));
    }
    return `${lines.join('\n')}\n`;
  }
}
