// Warden's live console (superusers only): the header's count of active sessions, the
// store-unreachable banner and the sessions table, kept current over Server-Sent Events
// from GET /admin/events. Every page works without it.
//
// EventSource reconnects by itself after a dropped connection; when the server answers the
// reconnect with an error instead (restarting, store down, signed out), EventSource gives up,
// and this script takes over: it asks GET /admin/live what is wrong and tries again with a
// growing pause, or reloads the page when the session has ended. The tabs of one browser
// share one stream (see "the stream" below).
(() => {
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 5000;
  // A burst of changes becomes one table refresh, and refreshes stay this far apart.
  const REFRESH_DELAY_MS = 150;
  const REFRESH_GAP_MS = 500;
  // How soon a table refresh refused for the store being away is tried again.
  const STORE_RETRY_MS = 2000;
  const NEW_ROW_MS = 3000;
  const STORE_DOWN_TEXT =
    'The session store is unreachable. Warden keeps retrying; sign-in and session pages answer 503 until it is back.';

  const STATES = {
    connecting: ['text-bg-secondary', 'Active sessions (connecting to live updates)'],
    live: ['text-bg-success', 'Active sessions, updated live'],
    reconnecting: ['text-bg-warning', 'Active sessions (live updates reconnecting…)'],
  };

  let source = null;
  let opened = false;
  let backoff = BACKOFF_MIN_MS;
  let retryTimer = null;

  // ---- header and banner

  function badge() {
    return document.getElementById('live-active');
  }

  function setState(state) {
    const el = badge();
    if (!el || el.dataset.state === state) return;
    for (const [cls] of Object.values(STATES)) el.classList.remove(cls);
    el.classList.add(STATES[state][0]);
    el.title = STATES[state][1];
    el.dataset.state = state;
  }

  function setCount(active) {
    const el = badge();
    if (!el || typeof active !== 'number') return;
    el.querySelector('[data-live-count]').textContent = active.toLocaleString('en');
    el.dataset.active = String(active);
    el.hidden = false;
  }

  function showStoreDown(down) {
    // The count cannot change while the store is away: it stays, greyed, as the last known one.
    const count = badge();
    if (count) {
      count.classList.toggle('opacity-50', down);
      if (down) count.dataset.stale = 'true';
      else delete count.dataset.stale;
      count.title = down
        ? 'Active sessions when the session store was last reached'
        : STATES[count.dataset.state][1];
    }
    const banner = document.getElementById('store-banner');
    if (!down) {
      banner?.remove();
      return;
    }
    if (banner) return;
    const el = document.createElement('div');
    el.className = 'alert alert-danger rounded-0 mb-3';
    el.setAttribute('role', 'alert');
    el.id = 'store-banner';
    el.textContent = STORE_DOWN_TEXT;
    document.querySelector('body > nav')?.after(el);
  }

  /**
   * Reads GET /admin/live and passes the figures to `tell` (this page, or every tab); says
   * what the answer means for reconnecting.
   */
  async function loadFigures(tell) {
    let res;
    try {
      res = await fetch('/admin/live', {
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      return 'unreachable';
    }
    if (res.status === 401 || res.status === 403) return 'signed-out';
    const body = await res.json().catch(() => null);
    if (res.ok && body) {
      tell('count', { active: body.active });
      tell('store', { up: body.storeUp });
      return 'ok';
    }
    if (body?.error?.code === 'WARDEN_STORE_UNAVAILABLE') tell('store', { up: false });
    return 'unavailable';
  }

  // ---- the sessions table

  let refreshTimer = null;
  let refreshing = false;
  let dirty = false;
  let lastRefresh = 0;
  let pointerDown = false;

  function sessionsTable() {
    return document.getElementById('sessions-table');
  }

  // LIMITATION: a new row pushes the others down; a click aimed at a row just before it moved
  // lands on the row below. The swap waits while a button is held down, not while one is aimed
  // at; each button names its session in its URL, and a revocation answers with a toast.

  /** A bulk revoke in progress owns the table until it reloads the page. */
  function busy() {
    const bulk = document.querySelector('#bulk-form [data-action="bulk-revoke"]');
    return pointerDown || bulk?.disabled === true;
  }

  function scheduleRefresh() {
    if (!sessionsTable()) return;
    dirty = true;
    if (refreshTimer || refreshing) return;
    const wait = Math.max(REFRESH_DELAY_MS, lastRefresh + REFRESH_GAP_MS - Date.now());
    refreshTimer = setTimeout(runRefresh, wait);
  }

  async function runRefresh() {
    refreshTimer = null;
    if (document.hidden) return; // visibilitychange picks it up
    if (busy()) {
      refreshTimer = setTimeout(runRefresh, REFRESH_GAP_MS);
      return;
    }
    dirty = false;
    refreshing = true;
    try {
      await refreshTable();
    } catch {
      // A failed refresh leaves the table as it was; the next change tries again.
    } finally {
      refreshing = false;
      lastRefresh = Date.now();
      if (dirty) scheduleRefresh();
    }
  }

  function replace(current, next) {
    if (current && next) current.replaceWith(document.adoptNode(next));
  }

  /** Re-reads the current URL (same filters, same page) and swaps in the parts that change. */
  async function refreshTable() {
    const table = sessionsTable();
    if (!table) return;
    const res = await fetch(window.location.href, {
      headers: { accept: 'text/html' },
      credentials: 'same-origin',
      cache: 'no-store',
    });
    if (res.status === 503) {
      showStoreDown(true);
      // The stream's hub may never have seen the store away (a pause shorter than its check),
      // so no "store up" would come: the table asks again until it is answered.
      setTimeout(scheduleRefresh, STORE_RETRY_MS);
      return;
    }
    if (!res.ok) return;
    // Answered from the store: whatever said it was away is over.
    showStoreDown(false);
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const next = doc.getElementById('sessions-table');
    if (!next?.tBodies[0] || busy()) return;

    const rows = (root) => [...root.querySelectorAll('tbody tr[data-session-id]')];
    const checked = new Set(
      [...table.querySelectorAll('input[name="ids"]:checked')].map((box) => box.value),
    );
    const known = new Set(rows(table).map((row) => row.dataset.sessionId));
    for (const box of next.querySelectorAll('input[name="ids"]')) {
      box.checked = checked.has(box.value);
    }
    const fresh = rows(next).filter((row) => !known.has(row.dataset.sessionId));
    for (const row of fresh) row.classList.add('table-info');

    replace(table.tBodies[0], next.tBodies[0]);
    replace(table.caption, next.caption);
    for (const selector of [
      '#match-count',
      '#active-count',
      'a[href^="/admin/sessions/revoke-matching"]',
    ]) {
      replace(document.querySelector(selector), doc.querySelector(selector));
    }
    replacePagination(doc);
    updateSelectAll();
    setTimeout(() => {
      for (const row of fresh) row.classList.remove('table-info');
    }, NEW_ROW_MS);
  }

  function replacePagination(doc) {
    const selector = 'nav[aria-label="Pages of sessions"]';
    const current = document.querySelector(selector);
    const next = doc.querySelector(selector);
    if (current && next) replace(current, next);
    else if (current) current.remove();
    else if (next) document.getElementById('bulk-form')?.after(document.adoptNode(next));
  }

  function updateSelectAll() {
    const all = document.getElementById('select-all');
    if (!all) return;
    const boxes = [
      ...document.querySelectorAll('#sessions-table input[name="ids"]:not(:disabled)'),
    ];
    all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
    all.indeterminate = !all.checked && boxes.some((b) => b.checked);
  }

  // ---- the stream, shared by the tabs of one browser

  // Each open stream holds one of the six connections a browser keeps per host over
  // HTTP/1.1; with one per tab, a seventh console tab would hang. So one tab (whichever holds
  // the Web Lock) keeps the stream and passes every frame to the others on a BroadcastChannel.
  // Where Web Locks are missing (plain http on a non-local host), every tab has its own.
  const channel = 'BroadcastChannel' in window ? new BroadcastChannel('warden-live') : null;
  const shared = Boolean(channel && navigator.locks);
  const last = { state: 'connecting', active: null, up: true };

  // Set when this page starts to leave: a sign-out or a revocation of one's own session from
  // this very page ends the session too, and a reload then would race the form's own redirect.
  let leaving = false;
  window.addEventListener('beforeunload', () => {
    leaving = true;
  });
  window.addEventListener('pageshow', () => {
    leaving = false;
  });

  /** The session ended elsewhere: reload, which lands on the sign-in page. */
  function signedOut() {
    if (!leaving) window.location.reload();
  }

  /** Applies one frame to this page. */
  function handle(event, payload) {
    if (event === 'state') setState(payload);
    else if (event === 'count') setCount(payload.active);
    else if (event === 'store') showStoreDown(payload.up === false);
    else if (event === 'session' || event === 'resync') scheduleRefresh();
    else if (event === 'bye') signedOut();
  }

  /** Applies a frame here and in every other tab (only the tab with the stream calls it). */
  function emit(event, payload) {
    if (event === 'state') last.state = payload;
    if (event === 'count') last.active = payload.active;
    if (event === 'store') last.up = payload.up !== false;
    handle(event, payload);
    channel?.postMessage({ event, payload });
  }

  /** Tells the other tabs what this one knows, for a tab that just opened. */
  function snapshot() {
    emit('state', last.state);
    if (last.active !== null) emit('count', { active: last.active });
    emit('store', { up: last.up });
  }

  function data(event) {
    try {
      return JSON.parse(event.data);
    } catch {
      return {};
    }
  }

  function connect() {
    source = new EventSource('/admin/events');
    source.addEventListener('open', () => {
      emit('state', 'live');
      backoff = BACKOFF_MIN_MS;
      // Changes made while the connection was down were not announced.
      if (opened) emit('resync', {});
      opened = true;
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) recover();
      else emit('state', 'reconnecting');
    });
    for (const name of ['session', 'resync', 'count', 'store']) {
      source.addEventListener(name, (e) => emit(name, data(e)));
    }
    source.addEventListener('bye', () => {
      // This browser's own session ended (signed out or revoked elsewhere): every tab reloads.
      source.close();
      emit('bye', {});
    });
  }

  function recover() {
    source?.close();
    emit('state', 'reconnecting');
    clearTimeout(retryTimer);
    retryTimer = setTimeout(async () => {
      const answer = await loadFigures(emit);
      if (answer === 'signed-out') {
        emit('bye', {});
      } else if (answer === 'ok') {
        connect();
      } else {
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
        recover();
      }
    }, backoff);
  }

  function lead() {
    channel?.addEventListener('message', (e) => {
      if (e.data?.event === 'hello') snapshot();
    });
    connect();
  }

  function start() {
    loadFigures(handle);
    if (!shared) {
      lead();
      return;
    }
    channel.addEventListener('message', (e) => handle(e.data?.event, e.data?.payload));
    channel.postMessage({ event: 'hello' });
    // Held until this tab goes away; then the next tab in line takes over the stream.
    navigator.locks.request('warden-live', () => new Promise(lead));
  }

  document.addEventListener('DOMContentLoaded', () => {
    if (!badge()) return;
    start();
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && dirty) scheduleRefresh();
    });
    sessionsTable()?.addEventListener('pointerdown', () => {
      pointerDown = true;
    });
    document.addEventListener('pointerup', () => {
      pointerDown = false;
    });
  });
})();
