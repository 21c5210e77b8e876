/**
 * @module admin/analytics-view
 * The analytics page: the range form, a row of headline figures, and one card per chart.
 * Each chart travels as a JSON spec in the canvas's `data-chart` attribute (no inline
 * script under the CSP), drawn by /static/analytics.js with Chart.js; the same figures are
 * a table right under it, the canvas's text alternative for screen readers and for people
 * who would rather read numbers.
 */
import type { AnalyticsReport, Period, WaitBounds } from '../users/analytics.js';
import { html, type SafeHtml } from '../views/html.js';
import { utc } from '../views/layout.js';

/** What analytics.js needs to draw one chart. */
export interface ChartSpec {
  id: string;
  title: string;
  type: 'bar' | 'line' | 'doughnut';
  labels: string[];
  datasets: { label: string; data: (number | null)[]; color: string }[];
  /** The value axis title (bar and line charts). */
  unit?: string;
}

const COLORS = {
  blue: '#0d6efd',
  green: '#198754',
  red: '#dc3545',
  amber: '#fd7e14',
  pink: '#d63384',
  teal: '#20c997',
  purple: '#6f42c1',
  cyan: '#0dcaf0',
};

const HOUR_MS = 3_600_000;

/** `3 h 20 min`, `2 d 4 h`, `45 s`. */
export function formatWait(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/**
 * An approximate median and where the exact one lies: `≈ 3 h 12 min`, then
 * `(3 h 5 min to 3 h 22 min)`; the medians are read from a histogram (users/analytics.ts).
 * In pieces that each read as one (see keptTogether).
 */
function approximateWait(ms: number | null, bounds: WaitBounds | null): string[] {
  if (ms === null || bounds === null) return ['—'];
  const [low, high] = bounds;
  return high === null
    ? [`≈ ${formatWait(ms)}`, `(${formatWait(low)} or more)`]
    : [`≈ ${formatWait(ms)}`, `(${formatWait(low)}`, `to ${formatWait(high)})`];
}

/**
 * Text that wraps only between its pieces, so a narrow table breaks "2025-02-26 to 2025-03-02"
 * before "to", never inside a date or between a figure and its unit.
 */
function keptTogether(pieces: readonly string[]): SafeHtml {
  return html`${pieces.map((p, i) => html`${i > 0 ? ' ' : ''}<span class="text-nowrap">${p}</span>`)}`;
}

function withinBounds([low, high]: WaitBounds): string {
  return high === null ? `${formatWait(low)} or more` : `${formatWait(low)} to ${formatWait(high)}`;
}

/** `2025-02-26`: the UTC day of an instant. */
function dayOf(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** A day's key, or the days a week covers within the range ("2025-02-26 to 2025-03-02"). */
function periodLabel(p: Period, granularity: string): string {
  if (granularity === 'day') return p.key;
  const first = dayOf(p.start);
  const last = dayOf(p.end - 1);
  return first === last ? first : `${first} to ${last}`;
}

/** The charts of a report, in page order. */
export function chartSpecs(r: AnalyticsReport): ChartSpec[] {
  const per = r.granularity === 'day' ? 'per day' : 'per week';
  const labels = r.periods.map((p) => p.key);
  const series = (label: string, color: string, data: (number | null)[]) => ({
    label,
    color,
    data,
  });
  return [
    {
      id: 'registrations',
      title: `Registrations ${per}`,
      type: 'bar',
      labels,
      unit: 'accounts',
      datasets: [
        series(
          'Registrations',
          COLORS.blue,
          r.periods.map((p) => p.registrations),
        ),
      ],
    },
    {
      id: 'decisions',
      title: `Approvals and rejections ${per}`,
      type: 'bar',
      labels,
      unit: 'accounts',
      datasets: [
        series(
          'Approvals',
          COLORS.green,
          r.periods.map((p) => p.approvals),
        ),
        series(
          'Rejections',
          COLORS.red,
          r.periods.map((p) => p.rejections),
        ),
      ],
    },
    {
      id: 'approval-wait',
      title: `Median time from registration to approval ${per} (approximate)`,
      type: 'line',
      labels,
      unit: 'hours',
      datasets: [
        series(
          'Median wait (hours, approximate)',
          COLORS.purple,
          r.periods.map((p) =>
            p.medianApprovalMs === null
              ? null
              : Math.round((p.medianApprovalMs / HOUR_MS) * 10) / 10,
          ),
        ),
      ],
    },
    {
      id: 'pending',
      title: 'Pending accounts at the end of each period',
      type: 'line',
      labels,
      unit: 'accounts',
      datasets: [
        series(
          'Pending',
          COLORS.amber,
          r.periods.map((p) => p.pendingAtEnd),
        ),
      ],
    },
    {
      id: 'by-role',
      title: 'Users by role (all users now)',
      type: 'doughnut',
      labels: Object.keys(r.byRole),
      datasets: [series('Users', COLORS.blue, Object.values(r.byRole))],
    },
    {
      id: 'by-status',
      title: 'Users by status (all users now)',
      type: 'doughnut',
      labels: Object.keys(r.byStatus),
      datasets: [series('Users', COLORS.green, Object.values(r.byStatus))],
    },
    {
      id: 'active-day',
      title: 'Active users per day',
      type: 'line',
      labels: r.active.day.map((p) => p.key),
      unit: 'users',
      datasets: [
        series(
          'Users who signed in',
          COLORS.teal,
          r.active.day.map((p) => p.users),
        ),
      ],
    },
    {
      id: 'active-week',
      title: 'Active users per week',
      type: 'bar',
      // Each week by its first day in the range: the first week may start before it.
      labels: r.active.week.map((p) => dayOf(p.start)),
      unit: 'users',
      datasets: [
        series(
          'Users who signed in',
          COLORS.cyan,
          r.active.week.map((p) => p.users),
        ),
      ],
    },
    {
      id: 'active-month',
      title: 'Active users per month',
      type: 'bar',
      labels: r.active.month.map((p) => p.key),
      unit: 'users',
      datasets: [
        series(
          'Users who signed in',
          COLORS.pink,
          r.active.month.map((p) => p.users),
        ),
      ],
    },
  ];
}

/** One sentence that says what the chart shows, for its aria-label. */
function summary(spec: ChartSpec): string {
  if (spec.type === 'doughnut') {
    const parts = spec.labels.map((l, i) => `${l} ${spec.datasets[0].data[i] ?? 0}`);
    return `${spec.title}: ${parts.join(', ')}.`;
  }
  const parts = spec.datasets.map((d) => {
    const values = d.data.filter((v): v is number => v !== null);
    if (values.length === 0) return `${d.label}: no data`;
    const max = Math.max(...values);
    const at = spec.labels[d.data.indexOf(max)];
    return `${d.label}: highest ${max} (${at}) over ${spec.labels.length} periods`;
  });
  return `${spec.title}. ${parts.join('; ')}.`;
}

type Cell = (value: number | null, row: number) => string | SafeHtml;
const plain: Cell = (v) => (v === null ? '—' : String(v));

function figureTable(spec: ChartSpec, rowLabels: string[], cell: Cell) {
  return html`<details class="mt-2" data-figures-for="${spec.id}">
  <summary>Figures as a table</summary>
  <div class="table-responsive"><table class="table table-sm table-striped mt-2 table-fit" id="table-${spec.id}">
    <caption class="small">${spec.title}</caption>
    <thead><tr><th scope="col">${spec.type === 'doughnut' ? 'Group' : 'Period'}</th>
      ${spec.datasets.map((d) => html`<th scope="col" class="text-end">${d.label}</th>`)}</tr></thead>
    <tbody>
      ${rowLabels.map(
        (
          label,
          i,
        ) => html`<tr><th scope="row" class="fw-normal">${keptTogether(label.split(/ (?=to )/))}</th>
        ${spec.datasets.map((d) => html`<td class="text-end">${cell(d.data[i] ?? null, i)}</td>`)}</tr>`,
      )}
    </tbody>
  </table></div>
</details>`;
}

function chartCard(spec: ChartSpec, rowLabels: string[], cell: Cell = plain) {
  return html`<div class="col"><section class="card h-100" aria-labelledby="title-${spec.id}">
  <div class="card-body">
    <h2 class="h6 card-title" id="title-${spec.id}">${spec.title}</h2>
    <canvas id="chart-${spec.id}" role="img" aria-label="${summary(spec)} The figures are in the table that follows."
      data-chart="${JSON.stringify(spec)}">${summary(spec)}</canvas>
    ${figureTable(spec, rowLabels, cell)}
  </div>
</section></div>`;
}

function stat(label: string, value: string, id: string, note?: string): SafeHtml {
  return html`<div class="col"><div class="card h-100"><div class="card-body py-2">
    <div class="small text-body-secondary">${label}</div>
    <div class="fs-4" id="${id}">${value}</div>
    ${note ? html`<div class="small text-body-secondary" id="${id}-note">${note}</div>` : ''}
  </div></div></div>`;
}

/** The headline median: `≈ 3 h 12 min`, with where the exact one lies under it. */
function medianStat(r: AnalyticsReport): SafeHtml {
  const { medianApprovalMs: ms, medianApprovalBoundsMs: bounds } = r.totals;
  if (ms === null || bounds === null) {
    return stat('Median time to approval', formatWait(null), 'total-median-wait');
  }
  return stat(
    'Median time to approval',
    `≈ ${formatWait(ms)}`,
    'total-median-wait',
    `to within its histogram bucket: ${withinBounds(bounds)}`,
  );
}

function rangeForm(r: AnalyticsReport): SafeHtml {
  const opt = (value: string, label: string) =>
    html`<option value="${value}"${r.granularity === value ? html` selected` : ''}>${label}</option>`;
  return html`<form method="get" action="/admin/analytics" class="row g-2 align-items-end mb-3"
    aria-label="Range of the analytics">
  <div class="col-6 col-md-3 col-lg-2">
    <label class="form-label small mb-0" for="a-from">From</label>
    <input class="form-control form-control-sm" type="date" id="a-from" name="from" value="${r.from}" required>
  </div>
  <div class="col-6 col-md-3 col-lg-2">
    <label class="form-label small mb-0" for="a-to">To (inclusive)</label>
    <input class="form-control form-control-sm" type="date" id="a-to" name="to" value="${r.to}" required>
  </div>
  <div class="col-6 col-md-3 col-lg-2">
    <label class="form-label small mb-0" for="a-granularity">Per</label>
    <select class="form-select form-select-sm" id="a-granularity" name="granularity">
      ${opt('day', 'Day')}${opt('week', 'Week (Monday to Sunday)')}
    </select>
  </div>
  <div class="col-6 col-md-3 col-lg-2"><button class="btn btn-primary btn-sm" type="submit">Show</button></div>
</form>`;
}

export function analyticsView(r: AnalyticsReport): SafeHtml {
  const specs = chartSpecs(r);
  const periodRows = r.periods.map((p) => periodLabel(p, r.granularity));
  const rowsOf: Record<string, string[]> = {
    'by-role': Object.keys(r.byRole),
    'by-status': Object.keys(r.byStatus),
    'active-day': r.active.day.map((p) => p.key),
    'active-week': r.active.week.map((p) => periodLabel(p, 'week')),
    'active-month': r.active.month.map((p) => p.key),
  };
  const pendingNow = r.periods.at(-1)?.pendingAtEnd ?? r.totals.pendingAtStart;

  return html`<div class="d-flex flex-wrap align-items-baseline gap-3 mb-2">
  <h1 class="h3 mb-0">User analytics</h1>
  <span class="text-body-secondary small">${r.from} to ${r.to}, UTC days · figures of ${utc(r.generatedAt)}</span>
</div>
${rangeForm(r)}
<div class="row row-cols-2 row-cols-md-4 row-cols-xxl-8 g-2 mb-3" id="analytics-totals">
  ${stat('Registrations', r.totals.registrations.toLocaleString('en'), 'total-registrations')}
  ${stat('Approvals', r.totals.approvals.toLocaleString('en'), 'total-approvals')}
  ${stat('Rejections', r.totals.rejections.toLocaleString('en'), 'total-rejections')}
  ${medianStat(r)}
  ${stat('Pending at the end', pendingNow.toLocaleString('en'), 'total-pending')}
  ${stat('Signed in, last 24 h', r.activeNow.day.toLocaleString('en'), 'active-24h')}
  ${stat('Signed in, last 7 days', r.activeNow.week.toLocaleString('en'), 'active-7d')}
  ${stat('Signed in, last 30 days', r.activeNow.month.toLocaleString('en'), 'active-30d')}
</div>
<div class="row row-cols-1 row-cols-xl-2 g-3 mb-4">
  ${specs.map((spec) =>
    spec.id === 'approval-wait'
      ? chartCard(spec, periodRows, (_, i) =>
          keptTogether(
            approximateWait(r.periods[i].medianApprovalMs, r.periods[i].medianApprovalBoundsMs),
          ),
        )
      : chartCard(spec, rowsOf[spec.id] ?? periodRows),
  )}
</div>
<p class="small text-body-secondary">Approvals and rejections count accounts that waited in the
  pending queue; accounts created already approved are not approvals. Active users signed in at
  least once in the period (from the session history, on every store). The medians of time to
  approval are approximate: they are read from a histogram of waits whose buckets are about 9%
  wide, so each is given with the range the exact median lies within (its bucket). Every other
  figure is exact.</p>
<script src="/static/chartjs/chart.umd.min.js" defer></script>
<script src="/static/analytics.js" defer></script>`;
}
