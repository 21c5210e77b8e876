/**
 * @module admin/stats-view
 * The statistics page. Each card is one section of the report and says when its figures
 * were taken; /static/stats.js fetches the same route as JSON every few seconds and rewrites
 * the marked elements in place:
 *
 *   data-section="sessions"        a card; its figures come from report.sessions.data
 *   data-stat="active"             text = formatted value at that path (data-format says how)
 *   data-rows="byRole"             a tbody rebuilt from the list (data-cols: key:format,…)
 *   data-show-if="!complete"       shown only while the value at that path is true (or false)
 *   data-chart="signInsPerHour"    a Chart.js canvas (data-x: the label key and its format)
 *   data-taken, data-error         the card's time of figures and its refresh error
 */
import { type Format, formatFigure, NUMERIC } from '../public/stats-format.js';
import { html, type SafeHtml } from '../views/html.js';
import { CLEANUP_QUESTION } from './sessions-view.js';
import { CLIENT_SAMPLE, MAX_AGE_MS, type StatsReport } from './stats-service.js';
import type { Snapshot } from './stats-snapshot.js';

/** How often the page asks for fresh figures, in milliseconds. */
export const REFRESH_MS = 3_000;

type Data = Record<string, unknown> | null;

function at(data: unknown, path: string): unknown {
  let value: unknown = data;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function stat(data: Data, path: string, format: Format): SafeHtml {
  return html`<span data-stat="${path}" data-format="${format}">${formatFigure(at(data, path), format)}</span>`;
}

/** Hidden unless the value at `path` is truthy (or, with a leading `!`, falsy). */
function showIf(data: Data, condition: string): SafeHtml {
  const negate = condition.startsWith('!');
  const truthy = Boolean(at(data, negate ? condition.slice(1) : condition));
  return html`data-show-if="${condition}" ${truthy === negate ? html`hidden` : ''}`;
}

type Column = [key: string, format: Format, header: string];

function table(data: Data, path: string, columns: Column[], caption: string): SafeHtml {
  const list = at(data, path);
  const items = Array.isArray(list) ? (list as Record<string, unknown>[]) : [];
  const spec = columns.map(([key, format]) => `${key}:${format}`).join(',');
  // Scrolls on its own on a narrow screen (a long email), rather than widening the page.
  return html`<div class="table-responsive"><table class="table table-sm mb-2">
    <caption class="visually-hidden">${caption}</caption>
    <thead><tr>${columns.map(
      ([, format, header]) =>
        html`<th scope="col"${NUMERIC.has(format) ? html` class="text-end"` : ''}>${header}</th>`,
    )}</tr></thead>
    <tbody data-rows="${path}" data-cols="${spec}">${items.map(
      (item) =>
        html`<tr>${columns.map(
          ([key, format]) =>
            html`<td${NUMERIC.has(format) ? html` class="text-end"` : ''}>${formatFigure(item[key], format)}</td>`,
        )}</tr>`,
    )}</tbody>
  </table></div>`;
}

function card(
  section: string,
  title: string,
  snap: Snapshot<unknown>,
  body: SafeHtml,
  extraClass = '',
): SafeHtml {
  const taken = snap.takenAt;
  return html`<section class="card mb-3 ${extraClass}" data-section="${section}"
    aria-labelledby="stats-${section}-title">
  <div class="card-header d-flex flex-wrap justify-content-between align-items-baseline gap-2">
    <h2 class="h6 mb-0" id="stats-${section}-title">${title}</h2>
    <small class="text-body-secondary">taken <time data-taken
      datetime="${taken === null ? '' : new Date(taken).toISOString()}">${formatFigure(taken, 'time')}</time></small>
  </div>
  <div class="card-body">
    <div class="alert alert-warning py-1 px-2 small" role="status" data-error ${snap.error ? '' : html`hidden`}>
      Could not refresh these figures: <span data-error-text>${snap.error ?? ''}</span>. Showing the last ones taken.
    </div>
    ${body}
  </div>
</section>`;
}

function dl(data: Data, rows: [string, string, Format][]): SafeHtml {
  return html`<dl class="row mb-0 small">${rows.map(
    ([label, path, format]) =>
      html`<dt class="col-7 fw-normal text-body-secondary">${label}</dt><dd class="col-5 text-end mb-1">${stat(data, path, format)}</dd>`,
  )}</dl>`;
}

function chart(name: string, x: string, xFormat: Format, label: string): SafeHtml {
  return html`<div class="stats-chart"><canvas data-chart="${name}" data-x="${x}:${xFormat}"
    data-label="${label}" role="img" aria-label="${label} (the table below has the figures)"></canvas></div>`;
}

const BREAKER_CLASSES = {
  closed: 'text-bg-success',
  half_open: 'text-bg-warning',
  open: 'text-bg-danger',
};
const BREAKER_LABELS = { closed: 'closed', half_open: 'half open', open: 'open' };

export interface StatsViewInput {
  report: StatsReport;
  csrfToken: string;
  storeKind: 'sql' | 'redis';
}

export function statsView({ report, csrfToken, storeKind }: StatsViewInput): SafeHtml {
  const sessions = report.sessions.data as Data;
  const activity = report.activity.data as Data;
  const store = report.store.data as Data;
  const database = report.database.data as Data;
  const health = report.health.data as Data;
  const breaker = report.breaker;

  const summary = card(
    'sessions',
    'Sessions',
    report.sessions,
    html`<div class="row text-center g-2">
      <div class="col-4"><div class="fs-3 fw-semibold" id="stat-total">${stat(sessions, 'total', 'int')}</div><div class="small text-body-secondary">stored</div></div>
      <div class="col-4"><div class="fs-3 fw-semibold text-success" id="stat-active">${stat(sessions, 'active', 'int')}</div><div class="small text-body-secondary">active</div></div>
      <div class="col-4"><div class="fs-3 fw-semibold text-body-secondary" id="stat-expired">${stat(sessions, 'expired', 'int')}</div><div class="small text-body-secondary">expired, not yet cleaned up</div></div>
    </div>
    <h3 class="h6 mt-3">By role</h3>
    ${table(
      sessions,
      'byRole',
      [
        ['role', 'text', 'Role'],
        ['total', 'int', 'Stored'],
        ['active', 'int', 'Active'],
      ],
      'Sessions by role',
    )}`,
  );

  const breakerCard = html`<section class="card mb-3" data-section="breaker" aria-labelledby="stats-breaker-title">
  <div class="card-header"><h2 class="h6 mb-0" id="stats-breaker-title">Circuit breaker</h2></div>
  <div class="card-body">
    <p class="mb-1"><span class="badge ${BREAKER_CLASSES[breaker.state]}" data-breaker-state="${breaker.state}"
      id="breaker-state">${BREAKER_LABELS[breaker.state]}</span></p>
    <p class="small mb-0 text-body-secondary">Last opened or closed: <span data-stat="since" data-format="time">${formatFigure(breaker.since, 'time')}</span>.
      Open means session-store calls fail fast (503) while Warden probes the store again by itself.</p>
  </div>
</section>`;

  const users = card(
    'sessions',
    'Users with the most sessions',
    report.sessions,
    html`${table(
      sessions,
      'topUsers',
      [
        ['email', 'text', 'User'],
        ['role', 'text', 'Role'],
        ['sessions', 'int', 'Sessions'],
      ],
      'Users with the most stored sessions',
    )}
    <p class="small text-body-secondary mb-0" ${showIf(sessions, 'topUsersSampledFrom')}>Sample: ranked among
      the users of the newest ${stat(sessions, 'topUsersSampledFrom', 'int')} sessions, each counted exactly.</p>`,
  );

  const clients = card(
    'sessions',
    'Active sessions by browser and OS',
    report.sessions,
    html`<p class="small text-body-secondary" ${showIf(sessions, '!clientSample.complete')}>
      Sample: the ${stat(sessions, 'clientSample.active', 'int')} active sessions among the newest
      ${formatFigure(CLIENT_SAMPLE, 'int')} sessions.</p>
    <div class="row">
      <div class="col-sm-6 col-lg-12 col-xl-6">${table(
        sessions,
        'browsers',
        [
          ['name', 'text', 'Browser'],
          ['count', 'int', 'Sessions'],
          ['share', 'percent', 'Share'],
        ],
        'Active sessions by browser',
      )}</div>
      <div class="col-sm-6 col-lg-12 col-xl-6">${table(
        sessions,
        'os',
        [
          ['name', 'text', 'OS'],
          ['count', 'int', 'Sessions'],
          ['share', 'percent', 'Share'],
        ],
        'Active sessions by operating system',
      )}</div>
    </div>`,
  );

  const signIns = card(
    'activity',
    'Sign-ins',
    report.activity,
    html`<h3 class="h6">Per hour, last 24 hours (UTC)</h3>
    ${chart('signInsPerHour', 'start', 'hour', 'Sign-ins per hour')}
    <details class="mb-3"><summary class="small">The figures as a table</summary>
      ${table(
        activity,
        'signInsPerHour',
        [
          ['start', 'hour', 'Hour starting'],
          ['count', 'int', 'Sign-ins'],
        ],
        'Sign-ins per hour, last 24 hours',
      )}
    </details>
    <h3 class="h6">Per day, last 30 days (UTC)</h3>
    ${chart('signInsPerDay', 'start', 'day', 'Sign-ins per day')}
    <details><summary class="small">The figures as a table</summary>
      ${table(
        activity,
        'signInsPerDay',
        [
          ['start', 'day', 'Day'],
          ['count', 'int', 'Sign-ins'],
        ],
        'Sign-ins per day, last 30 days',
      )}
    </details>`,
  );

  const storeCard = card(
    'store',
    storeKind === 'redis' ? 'Session store: Redis' : 'Session store: SQL',
    report.store,
    storeKind === 'redis'
      ? dl(store, [
          ['Server version', 'redis.version', 'text'],
          ['Uptime', 'redis.uptimeSeconds', 'duration'],
          ['Memory used', 'redis.usedMemoryBytes', 'bytes'],
          ['Memory peak', 'redis.peakMemoryBytes', 'bytes'],
          ['Fragmentation ratio', 'redis.fragmentationRatio', 'ratio'],
          ['Connected clients', 'redis.connectedClients', 'int'],
          ['Operations per second', 'redis.opsPerSecond', 'int'],
          ['Keyspace hit ratio', 'redis.hitRatio', 'percent'],
          ['Expired keys', 'redis.expiredKeys', 'int'],
          ['Evicted keys', 'redis.evictedKeys', 'int'],
          ['PING round trip (measured by Warden)', 'roundTripMs', 'ms'],
        ])
      : html`<p class="small">Sessions live in the database's <code>sessions</code> table (figures below).</p>
        ${dl(store, [['Round trip (measured by Warden)', 'roundTripMs', 'ms']])}`,
  );

  const databaseCard = card(
    'database',
    'Database',
    report.database,
    html`${dl(database, [
      ['Engine', 'dialect', 'text'],
      ['Size on disk', 'sizeBytes', 'bytes'],
      ['Round trip (measured by Warden)', 'roundTripMs', 'ms'],
    ])}
    <h3 class="h6 mt-3">Rows per table</h3>
    ${table(
      database,
      'tables',
      [
        ['name', 'text', 'Table'],
        ['rows', 'int', 'Rows'],
      ],
      'Rows per table',
    )}`,
  );

  const repairSteps =
    storeKind === 'redis'
      ? 'Repair walks every entry of the creation and expiry indexes and of each user’s index, and removes the entries whose session is gone or that are filed under another user, with the copies of revoked sessions an instance set aside and stopped before reading. Live sessions are not changed.'
      : 'Repair deletes the sessions whose user no longer exists: nobody can use them, since validation needs the user.';
  const healthCard = card(
    'health',
    'Store health',
    report.health,
    html`<div class="row">
      <div class="col-lg-6">
        <h3 class="h6">Active sessions by time left</h3>
        ${chart('remaining', 'label', 'text', 'Active sessions by time left')}
        ${table(
          health,
          'remaining',
          [
            ['label', 'text', 'Time left'],
            ['count', 'int', 'Sessions'],
          ],
          'Active sessions by remaining lifetime',
        )}
      </div>
      <div class="col-lg-6">
        <h3 class="h6">Expired, not yet cleaned up</h3>
        <p class="mb-1"><span class="fs-5 fw-semibold" id="stat-health-expired">${stat(health, 'expired', 'int')}</span> sessions;
          the oldest deadline was <span data-stat="oldestExpiredAt" data-format="time">${formatFigure(health?.oldestExpiredAt, 'time')}</span>.</p>
        <form method="post" action="/admin/sessions/cleanup-expired" class="mb-3">
          <input type="hidden" name="_csrf" value="${csrfToken}">
          <input type="hidden" name="return_to" value="/admin/sessions/stats">
          <button type="submit" class="btn btn-outline-secondary btn-sm" data-confirm="${CLEANUP_QUESTION}">Clean up expired sessions now</button>
        </form>

        <h3 class="h6">Entries that point to nothing</h3>
        ${table(
          health,
          'dangling',
          [
            ['label', 'text', 'Where'],
            ['count', 'int', 'Found'],
          ],
          'Index entries that point to nothing',
        )}
        <p class="small text-body-secondary mb-2">Checked ${stat(health, 'checked', 'int')} entries<span
          ${showIf(health, '!complete')}> (a bounded part: the oldest of each index; repair walks them all)</span>.</p>
        <form method="post" action="/admin/sessions/stats/repair" id="repair-form">
          <input type="hidden" name="_csrf" value="${csrfToken}">
          <p class="small mb-2">${repairSteps} Safe beside live traffic and safe to run again; the audit log records what was removed.</p>
          <button type="submit" class="btn btn-outline-danger btn-sm">Repair indexes</button>
        </form>
      </div>
    </div>`,
  );

  return html`<div id="stats" data-src="/admin/sessions/stats" data-refresh-ms="${REFRESH_MS}"
  data-max-age-ms="${MAX_AGE_MS.sessions}">
  <div class="d-flex flex-wrap justify-content-between align-items-baseline mb-2 gap-2">
    <h1 class="h3 mb-0">Statistics</h1>
    <p class="small text-body-secondary mb-0">Figures refresh by themselves every ${REFRESH_MS / 1000} seconds;
      each card says when its figures were taken. <span id="stats-refresh" role="status"></span></p>
  </div>
  <div class="row">
    <div class="col-lg-8">${summary}</div>
    <div class="col-lg-4">${breakerCard}</div>
  </div>
  <div class="row">
    <div class="col-lg-6">${signIns}</div>
    <div class="col-lg-6">${users}${clients}</div>
  </div>
  ${healthCard}
  <div class="row">
    <div class="col-lg-6">${storeCard}</div>
    <div class="col-lg-6">${databaseCard}</div>
  </div>
</div>
<script src="/static/chartjs/chart.umd.min.js" defer></script>
<script src="/static/stats.js" defer></script>`;
}
