// The statistics page refreshes its own figures: it asks the same route for JSON every few
// seconds and rewrites the elements the server marked (see src/admin/stats-view.ts for the
// attributes). Figures are written by stats-format.js, the module the server renders them
// with, so a figure reads the same before and after a refresh. Without this script the page
// still shows every figure. (A classic script: import() resolves next to this file.)
(async () => {
  const root = document.getElementById('stats');
  if (!root) return;
  const { formatFigure: format, NUMERIC } = await import('./stats-format.js');

  const src = root.dataset.src;
  const every = Number(root.dataset.refreshMs) || 3000;
  const status = document.getElementById('stats-refresh');
  const BREAKER = {
    closed: ['text-bg-success', 'closed'],
    half_open: ['text-bg-warning', 'half open'],
    open: ['text-bg-danger', 'open'],
  };
  const charts = new Map();
  let delay = every;
  let timer = null;
  let watching = null;
  let stopped = false;
  let refreshes = 0;

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

  // While a refresh backs off, /readyz (cheap, and it needs no session) is asked at the usual
  // pace: the breaker's card follows what it says, and the figures come back as soon as
  // Warden can answer rather than up to half a minute later.
  function watchReadiness(away) {
    clearTimeout(watching);
    watching = setTimeout(async () => {
      if (stopped || document.hidden || delay === every) return;
      const state = await readiness();
      if (state.ready) {
        schedule(0);
        return;
      }
      showBreaker(state, away);
      watchReadiness(away);
    }, every);
  }

  /** What /readyz (which needs no session) says: ready or not, and the store's breaker. */
  async function readiness() {
    try {
      const res = await fetch('/readyz', { cache: 'no-store' });
      const body = await res.json();
      const circuit = body?.sessionStore?.circuit;
      return {
        ready: body?.status === 'ready',
        circuit: circuit && BREAKER[circuit.state] ? circuit : null,
      };
    } catch {
      return { ready: false, circuit: null };
    }
  }

  /** Marks what the page shows as old; answers whether Warden is ready to be asked again. */
  async function showFailure(away) {
    // Every card keeps the last figures it was given: each says so (the page's one request
    // failed, whichever store a card's own figures come from).
    for (const note of root.querySelectorAll('[data-section] [data-error]')) {
      note.hidden = false;
      const text = note.querySelector('[data-error-text]');
      if (text) {
        text.textContent = away
          ? 'the page could not refresh while the session store is away'
          : 'refresh failed';
      }
    }
    const state = await readiness();
    showBreaker(state, away);
    return state.ready;
  }

  /**
   * The breaker's card while refreshes fail, from what /readyz said: it must not go on saying
   * "closed", nor keep the time of that state. An open breaker is shown with its own time. A
   * breaker still closed there (the store failed fewer times than opens it, or the page was
   * answered by something else) is not called open: the badge says what the answer said, with
   * no time.
   */
  function showBreaker({ circuit }, away) {
    const card = root.querySelector('[data-section="breaker"]');
    const badge = card?.querySelector('[data-breaker-state]');
    if (!card || !badge) return;
    if (circuit && circuit.state !== 'closed') {
      applySection(card, { state: circuit.state, since: Date.parse(circuit.since) });
      return;
    }
    badge.className = `badge ${away ? 'text-bg-danger' : 'text-bg-secondary'}`;
    badge.dataset.breakerState = away ? 'failing' : 'unknown';
    badge.textContent = away
      ? 'failing: the session store does not answer'
      : 'unknown: refresh failed';
    for (const since of card.querySelectorAll('[data-stat="since"]')) since.textContent = 'unknown';
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
      if (!res.ok) {
        const body = await res.json().catch(() => null);
        throw new Error(body?.error?.code ?? `HTTP ${res.status}`);
      }
      apply(await res.json());
      delay = every;
      say('');
    } catch (error) {
      const away = error?.message === 'WARDEN_STORE_UNAVAILABLE';
      // Back off while the server is unreachable, up to half a minute; once /readyz says it
      // is ready again, the next try comes at the usual interval.
      const ready = await showFailure(away);
      delay = ready ? every : Math.min(delay * 2, 30000);
      say(`Refresh failed; retrying in ${Math.round(delay / 1000)} s.`);
      if (!ready) watchReadiness(away);
    }
    schedule(delay);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) clearTimeout(timer);
    else schedule(0);
  });
  refresh();
})();
