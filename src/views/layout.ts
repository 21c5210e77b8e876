/**
 * @module views/layout
 * The page frame shared by every HTML page: Bootstrap from the installed package,
 * Warden's own script, the navigation and the toasts. No inline script or style.
 */
import type { Role } from '../db/schema.js';
import { html, type SafeHtml } from './html.js';

export interface Viewer {
  email: string;
  role: Role;
}

export interface Flash {
  kind: 'success' | 'warning' | 'danger' | 'info';
  message: string;
  /** Session ids to keep selected (those that failed, for a retry). */
  keep?: string[];
}

export type NavKey =
  | 'home'
  | 'my-sessions'
  | 'password'
  | 'sessions'
  | 'stats'
  | 'analytics'
  | 'users'
  | 'audit'
  | 'policy'
  | 'login'
  | 'register';

/** The console's pages, in menu order: one list, so a page is added in one place. */
const CONSOLE_NAV: readonly [NavKey, string, string][] = [
  ['sessions', '/admin/sessions', 'Sessions'],
  ['stats', '/admin/sessions/stats', 'Statistics'],
  ['users', '/admin/users', 'Users'],
  ['analytics', '/admin/analytics', 'Analytics'],
  ['audit', '/admin/audit', 'Audit'],
  ['policy', '/admin/policy', 'Policy'],
];

export interface PageOptions {
  title: string;
  viewer: Viewer | null;
  csrfToken: string;
  flash?: Flash | null;
  /** Which navigation entry is current. */
  nav?: NavKey;
  body: SafeHtml;
  /** Shown above the content when the session store cannot be reached. */
  storeDown?: boolean;
}

function navLink(href: string, label: string, current: boolean): SafeHtml {
  return html`<li class="nav-item"><a class="nav-link${current ? ' active' : ''}" href="${href}"
    ${current ? html`aria-current="page"` : ''}>${label}</a></li>`;
}

/** The header's live count of active sessions; live.js fills it and keeps it current. */
function liveBadge(): SafeHtml {
  return html`<a class="badge rounded-pill text-bg-secondary text-decoration-none me-md-3 my-2 my-md-0"
    id="live-active" href="/admin/sessions?status=active" data-state="connecting" hidden
    title="Active sessions (connecting to live updates)"><span data-live-count>…</span> active</a>`;
}

export function page(opts: PageOptions): SafeHtml {
  const { viewer, nav } = opts;
  const isSuperuser = viewer?.role === 'superuser';

  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${opts.csrfToken}">
<title>${opts.title} · Warden</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/bootstrap/css/bootstrap.min.css">
<link rel="stylesheet" href="/static/warden.css">
<script src="/static/bootstrap/js/bootstrap.bundle.min.js" defer></script>
<script src="/static/warden.js" defer></script>
${isSuperuser ? html`<script src="/static/live.js" defer></script>` : ''}
</head>
<body>
<a class="visually-hidden-focusable position-absolute top-0 start-0 m-2 p-2 bg-body rounded z-3" href="#main">Skip to the page's content</a>
<nav class="navbar navbar-expand-md navbar-dark bg-dark mb-3">
  <div class="container-fluid">
    <a class="navbar-brand" href="/">Warden</a>
    <button class="navbar-toggler" type="button" data-bs-toggle="collapse" data-bs-target="#nav"
      aria-controls="nav" aria-expanded="false" aria-label="Toggle navigation">
      <span class="navbar-toggler-icon"></span>
    </button>
    <div class="collapse navbar-collapse" id="nav">
      <ul class="navbar-nav me-auto flex-wrap">
        ${viewer ? navLink('/', 'Home', nav === 'home') : ''}
        ${viewer ? navLink('/me/sessions', 'My sessions', nav === 'my-sessions') : ''}
        ${viewer ? navLink('/me/password', 'Password', nav === 'password') : ''}
        ${isSuperuser ? CONSOLE_NAV.map(([key, href, label]) => navLink(href, label, nav === key)) : ''}
      </ul>
      ${isSuperuser ? liveBadge() : ''}
      ${
        viewer
          ? html`<form method="post" action="/logout" class="d-flex align-items-center gap-2">
          <span class="navbar-text small text-truncate nav-account" title="${viewer.email} (${viewer.role})">${viewer.email} (${viewer.role})</span>
          <input type="hidden" name="_csrf" value="${opts.csrfToken}">
          <button class="btn btn-outline-light btn-sm text-nowrap" type="submit">Sign out</button>
        </form>`
          : opts.storeDown
            ? // Who is asking cannot be checked while the store is away: say so rather than
              // offer a sign-in that would fail, as if the viewer were signed out.
              html`<span class="navbar-text small" id="nav-unknown">Sign-in state unknown while the session store is away</span>`
            : html`<ul class="navbar-nav">
          ${navLink('/login', 'Sign in', nav === 'login')}
          ${navLink('/register', 'Register', nav === 'register')}
        </ul>`
      }
    </div>
  </div>
</nav>
${
  opts.storeDown
    ? html`<div class="alert alert-danger rounded-0 mb-3" role="alert" id="store-banner">
  The session store is unreachable. Warden keeps retrying; signing in, and every page for a
  signed-in person, answer 503 until it is back.
</div>`
    : ''
}
<div class="toast-container position-fixed bottom-0 end-0 p-3" id="toasts">
  ${
    opts.flash
      ? html`<div class="toast show align-items-center text-bg-${opts.flash.kind} border-0" data-warden-toast>
    <div class="d-flex">
      <div class="toast-body">${opts.flash.message}</div>
      <button type="button" class="btn-close btn-close-white me-2 m-auto" data-bs-dismiss="toast"
        aria-label="Close"></button>
    </div>
  </div>`
      : ''
  }
</div>
<!-- Empty when the page loads, as a screen reader announces a live region's changes only:
  warden.js writes each toast's words into it. -->
<div class="visually-hidden" id="announcer" role="status" aria-live="polite" aria-atomic="true"></div>
<main class="container-fluid px-md-4" id="main" tabindex="-1">
${opts.body}
</main>
</body>
</html>`;
}

/** Server-side rendered relative time ("in 3 h", "5 min ago") for the time columns. */
export function relativeTime(at: number, now: number): string {
  const diff = at - now;
  const abs = Math.abs(diff);
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1_000, 's'],
  ];
  for (const [ms, label] of units) {
    if (abs >= ms) {
      const n = Math.floor(abs / ms);
      return diff >= 0 ? `in ${n} ${label}` : `${n} ${label} ago`;
    }
  }
  return 'now';
}

/** `2026-12-04 15:21:17 UTC` */
export function utc(at: number): string {
  return `${new Date(at).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** A time cell: relative text, exact UTC on hover, machine-readable datetime. */
export function timeCell(at: number, now: number): SafeHtml {
  return html`<time datetime="${new Date(at).toISOString()}" title="${utc(at)}">${relativeTime(at, now)}</time>`;
}

/**
 * First, Previous, where the reader is, Next and Last, for a list of `pages` pages. A page past
 * the last (an old link, a list that has shrunk since) says so, and Previous and Last lead back
 * to the last page.
 */
export function pager(
  label: string,
  page: number,
  pages: number,
  href: (page: number) => string,
  opts: { open?: boolean } = {},
): SafeHtml | '' {
  if (pages <= 1 && page <= 1) return '';
  const item = (p: number, text: string, disabled: boolean) =>
    pageItem(href(p), text, { disabled });
  // `open`: how many pages there are is not known (a capped count); `pages` is how far Next goes.
  const where = opts.open
    ? `Page ${page}`
    : page > pages
      ? `Page ${page} is past the last (${pages})`
      : `Page ${page} of ${pages}`;
  return html`<nav aria-label="${label}"><ul class="pagination pagination-sm flex-wrap">
  ${item(1, '« First', page <= 1)}
  ${item(Math.max(1, Math.min(pages, page - 1)), '‹ Previous', page <= 1)}
  <li class="page-item active"><span class="page-link" aria-current="page">${where}</span></li>
  ${item(page + 1, 'Next ›', page >= pages)}
  ${opts.open ? '' : item(pages, `Last (${pages}) »`, page === pages)}
</ul></nav>`;
}

/**
 * One item of a pager. A disabled one (First on page 1, Next on the last) is text, not a link:
 * Bootstrap's `disabled` only greys it out, and a keyboard or a screen reader would still
 * follow its href.
 */
export function pageItem(
  href: string,
  label: string,
  opts: { disabled?: boolean; current?: boolean } = {},
): SafeHtml {
  if (opts.disabled) {
    return html`<li class="page-item disabled"><span class="page-link" aria-disabled="true">${label}</span></li>`;
  }
  return html`<li class="page-item${opts.current ? ' active' : ''}"><a class="page-link" href="${href}"
    ${opts.current ? html`aria-current="page"` : ''}>${label}</a></li>`;
}

/**
 * The class of an address's cell: an IPv6 address (up to 39 characters) may break anywhere, so
 * that a table fits a laptop's screen; an IPv4 address stays whole.
 */
export function ipCellClass(ip: string | null): SafeHtml {
  return ip?.includes(':') ? html` class="text-break"` : html` class="text-nowrap"`;
}
