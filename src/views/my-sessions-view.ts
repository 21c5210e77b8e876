/**
 * @module views/my-sessions-view
 * A person's own sessions, as GitHub and GitLab list them: device, browser, IP, when it
 * started and was last used, the one in use marked, and a button to end any other one or all
 * of the others. Plain data in, HTML out.
 */
import { html, type SafeHtml, showDirectionControls } from './html.js';
import { timeCell } from './layout.js';

export interface OwnSessionView {
  id: string;
  current: boolean;
  device: string;
  browser: string;
  os: string;
  ip: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

function endButton(s: OwnSessionView, csrfToken: string): SafeHtml {
  return html`<form method="post" action="/me/sessions/${s.id}/revoke" class="d-inline">
    <input type="hidden" name="_csrf" value="${csrfToken}">
    <button class="btn btn-outline-danger btn-sm" type="submit"
      aria-label="End the session on ${s.browser} on ${s.os} from ${s.ip}">End session</button>
  </form>`;
}

export function mySessionsView(d: {
  sessions: OwnSessionView[];
  now: number;
  touchIntervalMs: number;
  csrfToken: string;
}): SafeHtml {
  const others = d.sessions.filter((s) => !s.current).length;
  const seconds = Math.max(1, Math.round(d.touchIntervalMs / 1000));
  const often =
    seconds < 60
      ? `every ${seconds} seconds`
      : seconds < 120
        ? 'once a minute'
        : `every ${Math.round(seconds / 60)} minutes`;
  return html`<div class="col-xl-9">
<div class="d-flex flex-wrap align-items-baseline gap-3 mb-2">
  <h1 class="h3 mb-0">My sessions</h1>
  <span id="my-session-count" data-total="${d.sessions.length}">${d.sessions.length} signed in</span>
</div>
<p class="text-body-secondary">Every browser or device where you are signed in. If you do not
  recognise one, end it, and change your password. “Last seen” is updated at most ${often}.</p>
<form method="post" action="/me/sessions/revoke-others" class="mb-3">
  <input type="hidden" name="_csrf" value="${d.csrfToken}">
  <button class="btn btn-danger btn-sm" type="submit"${others === 0 ? html` disabled` : ''}>End all other sessions (${others})</button>
</form>
<ul class="list-group" id="my-sessions">
${d.sessions.map(
  (
    s,
  ) => html`<li class="list-group-item d-flex flex-wrap gap-3 align-items-center" data-session-id="${s.id}"${s.current ? html` data-current` : ''}>
  <div class="flex-grow-1">
    <div class="fw-semibold">${showDirectionControls(`${s.browser} on ${s.os}`)}
      ${s.current ? html`<span class="badge text-bg-success ms-1">This device</span>` : ''}</div>
    <div class="small text-body-secondary">${showDirectionControls(s.device)} · IP <span class="text-nowrap">${s.ip}</span></div>
    <div class="small">Signed in ${timeCell(s.createdAt, d.now)} · last seen ${timeCell(s.lastSeenAt, d.now)} ·
      expires ${timeCell(s.expiresAt, d.now)}</div>
  </div>
  <div>${s.current ? html`<span class="small text-body-secondary">Use “Sign out” for this one</span>` : endButton(s, d.csrfToken)}</div>
</li>`,
)}
</ul>
</div>`;
}
