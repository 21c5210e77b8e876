/**
 * @module bench/pages
 * Section 5: what the sessions page weighs (HTML of a 50-row page, Warden's own browser
 * scripts, the requests a browser makes to render it), on a small SQLite fleet.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, wardenCli } from './lib/procs.js';
import { fmt, table } from './lib/stats.js';
import { sqliteFile, startWarden, wardenEnv } from './lib/warden.js';

export async function runPages(log: (line: string) => void): Promise<string> {
  const setup = { name: 'sqlite', env: { DATABASE_URL: sqliteFile('pages') } };
  await wardenCli(['migrate'], wardenEnv(setup, 0)).catch(() => {});
  const warden = await startWarden(setup);
  try {
    await wardenCli(['seed-demo', '--users', '200', '--sessions', '1000'], wardenEnv(setup, 0));
    const res = await warden.admin.get('/admin/sessions?per_page=50', 'text/html');
    const html = await res.text();
    const rows = (html.match(/<tr[\s>]/g) ?? []).length;
    const scripts = [...html.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)].map((m) => m[1]);
    const styles = [...html.matchAll(/<link[^>]*\shref="([^"]+)"/g)].map((m) => m[1]);
    const assets: Array<[string, number]> = [];
    for (const url of [...scripts, ...styles]) {
      const a = await warden.admin.get(url, '*/*');
      assets.push([url, (await a.arrayBuffer()).byteLength]);
    }
    const ownDir = path.join(ROOT, 'src', 'public');
    const own = fs
      .readdirSync(ownDir)
      .filter((f) => f.endsWith('.js'))
      .map((f) => [f, fs.statSync(path.join(ownDir, f)).size] as [string, number]);
    const onPage = scripts.filter(
      (s) => s.startsWith('/static/') && !s.includes('bootstrap') && !s.includes('chartjs'),
    );
    const ownOnPage = own.filter(([f]) => onPage.some((s) => s.endsWith(`/${f}`)));
    log(`pages: ${html.length} bytes of HTML, ${rows} <tr>`);
    return [
      table(
        ['what', 'bytes', 'notes'],
        [
          [
            'HTML of /admin/sessions (50 rows)',
            fmt(Buffer.byteLength(html)),
            `${rows} table rows incl. header; uncompressed`,
          ],
          ...assets.map(([u, b]) => [`  ${u}`, fmt(b), 'loaded by the page']),
          [
            "Warden's own scripts loaded by the page",
            fmt(ownOnPage.reduce((a, [, b]) => a + b, 0)),
            ownOnPage.map(([f]) => f).join(', '),
          ],
          [
            "all of Warden's own scripts (src/public/*.js)",
            fmt(own.reduce((a, [, b]) => a + b, 0)),
            own.map(([f, b]) => `${f} ${fmt(b)}`).join(', '),
          ],
        ],
      ),
      '',
      `Requests to render the page: ${1 + scripts.length + styles.length} (the HTML, ${scripts.length} scripts, ${styles.length} stylesheets/icons), plus one live-updates stream (SSE) opened by live.js when present; no inline script or style.`,
    ].join('\n');
  } finally {
    await warden.stop();
  }
}
