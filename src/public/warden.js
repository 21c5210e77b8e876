// Warden's browser script: select-all, toasts, and bulk revoke with a progress bar.
// Every page works without it; this only makes the console quicker to use.
(() => {
  const BULK_CHUNK = 100;
  const TOAST_KEY = 'warden:toast';

  const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? '';

  function toast(message, kind = 'success') {
    const container = document.getElementById('toasts');
    if (!container) return;
    const el = document.createElement('div');
    el.className = `toast align-items-center text-bg-${kind} border-0`;
    el.dataset.wardenToast = '';
    const row = document.createElement('div');
    row.className = 'd-flex';
    const body = document.createElement('div');
    body.className = 'toast-body';
    body.textContent = message;
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'btn-close btn-close-white me-2 m-auto';
    close.setAttribute('data-bs-dismiss', 'toast');
    close.setAttribute('aria-label', 'Close');
    row.append(body, close);
    el.append(row);
    container.append(el);
    showToast(el);
  }

  // The page's one live region (layout.ts), empty at load: a toast's words written into it
  // a moment later are read out; a region that arrives with its text, as a toast does, is not.
  function announce(text) {
    const region = document.getElementById('announcer');
    if (!region) return;
    region.textContent = '';
    setTimeout(() => {
      region.textContent = text;
    }, 100);
  }

  function showToast(el) {
    announce(el.querySelector('.toast-body')?.textContent?.trim() ?? '');
    if (window.bootstrap?.Toast) {
      window.bootstrap.Toast.getOrCreateInstance(el, { delay: 8000 }).show();
    } else {
      el.classList.add('show');
    }
  }

  function initToasts() {
    for (const el of document.querySelectorAll('[data-warden-toast]')) showToast(el);
    const pending = sessionStorage.getItem(TOAST_KEY);
    if (pending) {
      sessionStorage.removeItem(TOAST_KEY);
      const { message, kind } = JSON.parse(pending);
      toast(message, kind);
    }
  }

  // A header checkbox that selects every enabled row checkbox of its table.
  function initSelectAll(allId, tableId) {
    const all = document.getElementById(allId);
    if (!all) return;
    const boxes = () => [
      ...document.querySelectorAll(`#${tableId} input[name="ids"]:not(:disabled)`),
    ];
    all.addEventListener('change', () => {
      for (const box of boxes()) box.checked = all.checked;
    });
    document.getElementById(tableId)?.addEventListener('change', (event) => {
      if (event.target?.name !== 'ids') return;
      const list = boxes();
      all.checked = list.length > 0 && list.every((b) => b.checked);
      all.indeterminate = !all.checked && list.some((b) => b.checked);
    });
  }

  const LABELS = {
    revoked: 'revoked',
    already_ended: 'already ended',
    not_found: 'not found',
    invalid: 'not a session id',
    kept_own: 'kept (your own session)',
    failed: 'failed',
  };

  function describe(counts) {
    const parts = Object.keys(LABELS)
      .filter((k) => counts[k] > 0)
      .map((k) => `${counts[k].toLocaleString('en')} ${LABELS[k]}`);
    return parts.length ? parts.join(', ') : 'nothing to revoke';
  }

  function setProgress(bar, done, total) {
    const pct = total === 0 ? 100 : Math.round((done / total) * 100);
    bar.classList.remove('d-none');
    bar.setAttribute('aria-valuenow', String(pct));
    bar.firstElementChild.style.width = `${pct}%`;
    bar.firstElementChild.textContent = `${done} / ${total}`;
  }

  // The rows ticked for a form, its own and those outside it that name it (form="…").
  function selectedIds(form) {
    return [...form.elements].filter((e) => e.name === 'ids' && e.checked).map((e) => e.value);
  }

  async function bulkRevoke(form, button) {
    const ids = selectedIds(form);
    const includeOwn = form.querySelector('input[name="include_own"]')?.checked ?? false;
    const bar = document.getElementById('bulk-progress');
    const counts = {
      revoked: 0,
      already_ended: 0,
      not_found: 0,
      invalid: 0,
      kept_own: 0,
      failed: 0,
    };
    const failed = new Set();
    button.disabled = true;
    setProgress(bar, 0, ids.length);

    for (let i = 0; i < ids.length; i += BULK_CHUNK) {
      const chunk = ids.slice(i, i + BULK_CHUNK);
      try {
        const res = await fetch('/admin/sessions/bulk-revoke', {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            'x-csrf-token': csrfToken(),
          },
          body: JSON.stringify({ ids: chunk, include_own: includeOwn }),
          credentials: 'same-origin',
        });
        const body = await res.json().catch(() => ({}));
        if (res.status === 401) {
          // Signed out meanwhile (elsewhere, or the session lapsed): to sign in, then back here,
          // saying what was and was not done, as a form sent without a session is told.
          const before = counts.revoked > 0 ? `${counts.revoked} revoked, then you` : 'You';
          sessionStorage.setItem(
            TOAST_KEY,
            JSON.stringify({
              kind: 'warning',
              message: `${before} were not signed in, so the rest was not done. Sign in, then do it again.`,
            }),
          );
          window.location.assign(
            `/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`,
          );
          return;
        }
        if (body?.error?.code === 'WARDEN_STEP_UP_REQUIRED') {
          // The server wants the password again: send the form itself (the rows still
          // selected), which answers with the page that asks for it and then revokes them.
          HTMLFormElement.prototype.submit.call(form);
          return;
        }
        if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
        for (const r of body.results) {
          counts[r.status] += 1;
          const rowEl = form.querySelector(`tr[data-session-id="${r.id}"]`);
          if (r.status === 'failed') failed.add(r.id);
          else if (rowEl && r.status !== 'kept_own') {
            rowEl.classList.add('revoked');
            const box = rowEl.querySelector('input[name="ids"]');
            box.checked = false;
            box.disabled = true;
          }
        }
      } catch (err) {
        for (const id of chunk) failed.add(id);
        counts.failed += chunk.length;
        toast(`A batch failed: ${err.message}`, 'danger');
      }
      setProgress(bar, Math.min(ids.length, i + chunk.length), ids.length);
    }

    button.disabled = false;
    const message = describe(counts);
    if (failed.size > 0) {
      toast(`${message}. Failed rows stay selected: retry.`, 'danger');
      return;
    }
    sessionStorage.setItem(TOAST_KEY, JSON.stringify({ message: `${message}.`, kind: 'success' }));
    window.location.reload();
  }

  function initBulk() {
    const form = document.querySelector('form[data-warden-bulk]');
    if (!form) return;
    form.addEventListener('submit', (event) => {
      const button = event.submitter;
      if (button?.dataset.action !== 'bulk-revoke') return;
      event.preventDefault();
      bulkRevoke(form, button);
    });
  }

  // A page refused while a store was away (503) reloads once /readyz says Warden can answer.
  function initReloadWhenReady() {
    if (!document.querySelector('a[data-reload-when-ready]')) return;
    const check = async () => {
      const res = await fetch('/readyz', { cache: 'no-store' }).catch(() => null);
      if (res?.ok) {
        window.location.reload();
        return;
      }
      setTimeout(check, 2000);
    };
    setTimeout(check, 2000);
  }

  // An action that ends many sessions at once, or that cannot be undone, asks first: its button
  // carries the question in data-confirm ("{n}": the rows selected; "{s}": an s unless one).
  // It runs before the bulk revocation's own handler, and a "no" stops that too. Without
  // script the form just goes.
  function initConfirm() {
    document.addEventListener(
      'submit',
      (event) => {
        const question = event.submitter?.dataset.confirm;
        if (!question) return;
        const selected = selectedIds(event.target).length;
        const asked = question
          .replace('{n}', String(selected))
          .replace('{s}', selected === 1 ? '' : 's');
        if (window.confirm(asked)) return;
        event.preventDefault();
        event.stopImmediatePropagation();
      },
      true,
    );
  }

  // A button for the rows ticked (data-needs-selection: what a row is) says so when none is,
  // and sends nothing: the server's refusal would be a page of its own, the filters left behind.
  // Registered before the question (initConfirm), which there is then no need to ask.
  function initNeedsSelection() {
    document.addEventListener(
      'submit',
      (event) => {
        const what = event.submitter?.dataset.needsSelection;
        if (!what || selectedIds(event.target).length > 0) return;
        event.preventDefault();
        event.stopImmediatePropagation();
        toast(`Select at least one ${what} first.`, 'warning');
      },
      true,
    );
  }

  // On a narrow screen the navigation opens over the page; Escape closes it, as it does a
  // menu, and gives the focus back to the button that opened it.
  function initNavEscape() {
    document.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      const nav = document.getElementById('nav');
      if (!nav?.classList.contains('show') || !window.bootstrap?.Collapse) return;
      window.bootstrap.Collapse.getOrCreateInstance(nav, { toggle: false }).hide();
      document.querySelector('[data-bs-target="#nav"]')?.focus();
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    initNavEscape();
    initNeedsSelection();
    initConfirm();
    initReloadWhenReady();
    initToasts();
    initSelectAll('select-all', 'sessions-table');
    initSelectAll('select-all-users', 'users-table');
    initBulk();
  });
})();
