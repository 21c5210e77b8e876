// The statistics page refreshes its own figures: it asks the same route for JSON every few
// seconds and rewrites the elements the server marked (see src/admin/stats-view.ts for the
// attributes). Formatting follows src/admin/stats-format.ts, so a figure reads the same
// before and after a refresh. Without this script the page still shows every figure.
(() => {
  const root = document.getElementById('stats');
  if (!root) return;

  const src = root.dataset.src;
  const every = Number(root.dataset.refreshMs) || 3000;
  const status = document.getElementById('stats-refresh');
  const NUMERIC = new Set(['int', 'bytes', 'ms', 'ratio', 'percent', 'duration']);
  const BREAKER = {
    closed: ['text-bg-success', 'closed'],
    half_open: ['text-bg-warning', 'half open'],
    open: ['text-bg-danger', 'open'],
  };
  const charts = new Map();
  let delay = every;
  let timer = null;
  let stopped = false;
  let refreshes = 0;

  // --- formatting (mirror of stats-format.ts) ---------------------------------------------

  const int = (n) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${int(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
  }

  function duration(seconds) {
    const parts = [
      [86400, 'd'],
      [3600, 'h'],
      [60, 'min'],
      [1, 's'],
    ];
    const out = [];
    let rest = Math.max(0, Math.floor(seconds));
    for (const [size, label] of parts) {
      if (rest >= size || (out.length === 0 && size === 1)) {
        out.push(`${Math.floor(rest / size)} ${label}`);
        rest %= size;
      }
      if (out.length === 2) break;
    }
    return out.join(' ');
  }

  function format(value, kind) {
    if (value === null || value === undefined) return '—';
    if (kind === 'text') return String(value);
    const n = Number(value);
    if (!Number.isFinite(n)) return '—';
    switch (kind) {
      case 'int':
        return int(n);
      case 'bytes':
        return bytes(n);
      case 'ms':
        return `${n.toFixed(2)} ms`;
      case 'ratio':
        return n.toFixed(2);
      case 'percent':
        return `${(n * 100).toFixed(1)} %`;
      case 'duration':
        return duration(n);
      case 'time':
        return `${new Date(n).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
      case 'hour':
        return `${new Date(n).toISOString().slice(11, 13)}:00`;
      case 'day':
        return new Date(n).toISOString().slice(0, 10);
      default:
        return String(value);
    }
  }

  function at(data, path) {
    let value = data;
    for (const key of path.split('.')) {
      if (value === null || typeof value !== 'object') return undefined;
      value = value[key];
    }
    return value;
  }

  // --- applying a report --------------------------------------------------------------------

  function rebuildRows(tbody, list) {
    const cols = (tbody.dataset.cols || '').split(',').map((c) => c.split(':'));
    const rows = (Array.isArray(list) ? list : []).map((item) => {
      const tr = document.createElement('tr');
      for (const [key, kind] of cols) {
        const td = document.createElement('td');
        if (NUMERIC.has(kind)) td.className = 'text-end';
        td.textContent = format(item[key], kind);
        tr.append(td);
      }
      return tr;
    });
    tbody.replaceChildren(...rows);
  }

  function drawChart(canvas, list) {
    if (!window.Chart) return;
    const [xKey, xKind] = (canvas.dataset.x || 'label:text').split(':');
    const items = Array.isArray(list) ? list : [];
    const labels = items.map((item) => format(item[xKey], xKind));
    const values = items.map((item) => item.count);
    const existing = charts.get(canvas);
    if (existing) {
      existing.data.labels = labels;
      existing.data.datasets[0].data = values;
      existing.update('none');
      return;
    }
    charts.set(
      canvas,
      new window.Chart(canvas, {
        type: 'bar',
        data: {
          labels,
          datasets: [
            {
              label: canvas.dataset.label || '',
              data: values,
              backgroundColor: 'rgba(13, 110, 253, 0.6)',
            },
          ],
        },
        options: {
          animation: false,
          responsive: true,
          aspectRatio: 2.5,
          plugins: { legend: { display: false } },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      }),
    );
  }

  function applySection(card, section) {
    if (!section) return;
    // Snapshot sections carry takenAt, data and error; the breaker is read live.
    const isSnapshot = 'takenAt' in section && 'data' in section;
    const data = isSnapshot ? section.data : section;

    if (isSnapshot) {
      const taken = card.querySelector('[data-taken]');
      if (taken && section.takenAt !== null) {
        taken.dateTime = new Date(section.takenAt).toISOString();
        taken.textContent = format(section.takenAt, 'time');
      }
      const error = card.querySelector('[data-error]');
      if (error) {
        error.hidden = !section.error;
        const text = error.querySelector('[data-error-text]');
        if (text) text.textContent = section.error || '';
      }
    }
    if (data === null || data === undefined) return;

    for (const el of card.querySelectorAll('[data-stat]')) {
      el.textContent = format(at(data, el.dataset.stat), el.dataset.format || 'text');
    }
    for (const tbody of card.querySelectorAll('tbody[data-rows]')) {
      rebuildRows(tbody, at(data, tbody.dataset.rows));
    }
    for (const el of card.querySelectorAll('[data-show-if]')) {
      const condition = el.dataset.showIf;
      const negate = condition.startsWith('!');
      const truthy = Boolean(at(data, negate ? condition.slice(1) : condition));
      el.hidden = truthy === negate;
    }
    for (const canvas of card.querySelectorAll('canvas[data-chart]')) {
      drawChart(canvas, at(data, canvas.dataset.chart));
    }
    const badge = card.querySelector('[data-breaker-state]');
    if (badge && BREAKER[data.state]) {
      const [cls, label] = BREAKER[data.state];
      badge.className = `badge ${cls}`;
      badge.dataset.breakerState = data.state;
      badge.textContent = label;
    }
  }

  function apply(report) {
    for (const card of root.querySelectorAll('[data-section]')) {
      applySection(card, report[card.dataset.section]);
    }
    refreshes += 1;
    root.dataset.refreshes = String(refreshes);
    root.dataset.refreshedAt = String(report.now);
  }

  // --- the refresh loop ---------------------------------------------------------------------

  function say(text) {
    if (status) status.textContent = text;
  }

  function schedule(ms) {
    clearTimeout(timer);
    if (!stopped && !document.hidden) timer = setTimeout(refresh, ms);
  }

  async function refresh() {
    try {
      const res = await fetch(src, {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (res.status === 401 || res.status === 403) {
        stopped = true;
        say('Refresh stopped: your session ended. Reload the page to sign in again.');
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      apply(await res.json());
      delay = every;
      say('');
    } catch {
      // Back off while the server is unreachable, up to half a minute.
      delay = Math.min(delay * 2, 30000);
      say(`Refresh failed; retrying in ${Math.round(delay / 1000)} s.`);
    }
    schedule(delay);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) clearTimeout(timer);
    else schedule(0);
  });
  refresh();
})();
