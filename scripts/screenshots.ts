/**
 * Screenshots of the console for the README, from a real run: a demo fleet seeded into a
 * temp SQLite database with the `warden` command, `warden serve` on a free loopback port, a
 * superuser signed in through the form in Debian's Chromium, and each page saved as a PNG at
 * a desktop and a phone size once its charts have drawn.
 *
 *   npm run screenshots [-- --out DIR]      (default docs/screenshots)
 *
 * Never part of `npm test`. Everything it starts it stops, and the temp dir goes with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
// The suites' Chromium (Debian's, headless, loopback only) and their sign-in through the form.
import { launchChromium, signInThroughForm } from '../test/support/browser.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/warden.js');
const SUPERUSER = 'ops@example.test';
/** A fleet big enough for every chart and table to look lived-in. */
const DEMO = { users: '300', sessions: '2000' };

const VIEWPORTS = [
  { name: 'desktop', viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 },
  {
    name: 'phone',
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  },
] as const;

const PAGES = [
  { name: 'stats', path: '/admin/sessions/stats' },
  { name: 'analytics', path: '/admin/analytics' },
  { name: 'users', path: '/admin/users' },
  { name: 'sessions', path: '/admin/sessions' },
] as const;

const { values } = parseArgs({ options: { out: { type: 'string' } } });
const outDir = path.resolve(values.out ?? path.join(ROOT, 'docs/screenshots'));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-screenshots-'));
const password = randomBytes(12).toString('hex');
const env = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  DATABASE_URL: path.join(tmp, 'warden.db'),
  HOST: '127.0.0.1',
  PORT: '0',
  WARDEN_PASSWORD: password,
  WARDEN_DEMO_PASSWORD: randomBytes(12).toString('hex'),
};

let server: ChildProcess | undefined;
let browser: Browser | undefined;
try {
  await warden(['create-superuser', '--email', SUPERUSER]);
  await warden(['seed-demo', '--users', DEMO.users, '--sessions', DEMO.sessions]);
  server = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const base = await listeningUrl(server);

  browser = await launchChromium();
  fs.mkdirSync(outDir, { recursive: true });
  for (const { name: size, ...device } of VIEWPORTS) {
    const context = await browser.newContext({
      ...device,
      baseURL: base,
      locale: 'en-GB',
      timezoneId: 'UTC',
      colorScheme: 'light',
    });
    const page = await context.newPage();
    const problems = watch(page);
    await signInThroughForm(page, SUPERUSER, password);
    for (const { name, path: url } of PAGES) {
      await page.goto(url);
      await settled(page);
      const overflow = await wider(page);
      if (overflow.length > 0)
        problems.push(`${url} (${size}) is wider than the screen: ${overflow}`);
      const file = path.join(outDir, `${name}-${size}.png`);
      await page.screenshot({ path: file });
      console.log(
        `${path.relative(process.cwd(), file)}  ${Math.round(fs.statSync(file).size / 1024)} KiB`,
      );
    }
    await context.close();
    if (problems.length > 0) throw new Error(`the pages were not clean:\n${problems.join('\n')}`);
  }
} finally {
  await browser?.close();
  if (server) await stop(server);
  fs.rmSync(tmp, { recursive: true, force: true });
}

/** Runs `warden <args>` to its end; throws with its stderr when it fails. */
function warden(args: string[]): Promise<void> {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`warden ${args[0]} exited ${code}: ${stderr}`)),
    );
  });
}

/** The base URL from the server's "listening" log line. */
function listeningUrl(child: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`warden serve did not start: ${err}`)), 20_000);
    child.stderr?.on('data', (d) => {
      err += d;
    });
    child.stdout?.on('data', (d) => {
      out += d;
      const match = /listening at (http:\/\/127\.0\.0\.1:\d+)/i.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`warden serve exited ${code}: ${err}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Console errors, page errors and failed responses: a screenshot of a broken page is no use. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });
  return problems;
}

/** Waits until every visible chart canvas has drawn something and the fonts are in. */
async function settled(page: Page): Promise<void> {
  await page.waitForLoadState('load');
  await page.waitForFunction(
    () =>
      Array.from(document.querySelectorAll('canvas'))
        .filter((c) => c.offsetParent !== null && c.width > 0)
        .every((c) => {
          const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
          for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
          return false;
        }),
    undefined,
    { timeout: 10_000 },
  );
  await page.evaluate(() => document.fonts.ready);
  // Chart.js animates its first draw; let it finish.
  await page.waitForTimeout(800);
}

/** The elements that stick out past the right edge (outside a scrolling table), if any. */
function wider(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const edge = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth <= edge) return [];
    return (
      Array.from(document.querySelectorAll('body *'))
        .filter((e) => e.getBoundingClientRect().right > edge + 1)
        // A scrolling table may be wide; a fixed element (the toasts) moves with the viewport.
        .filter((e) => !e.closest('.table-responsive') && getComputedStyle(e).position !== 'fixed')
        .slice(0, 8)
        .map(
          (e) =>
            `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}.${Array.from(e.classList).join('.')}`,
        )
    );
  });
}
