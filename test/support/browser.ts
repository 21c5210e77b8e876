/**
 * Real Chromium for the end-to-end suites: Debian's `/usr/bin/chromium` driven by playwright-core
 * (never a browser download), a Warden app listening on loopback, and a watch on every page for
 * console errors, uncaught page errors, CSP violations, server errors and requests that leave
 * the app's origin, so a test can assert that a flow ran clean.
 *
 * A missing Chromium skips the suites loudly, or fails them when `WARDEN_REQUIRE_SERVICES=1`,
 * exactly like a missing Redis or PostgreSQL (see services.ts).
 */
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { makeApp, type StoreKind, type TestApp } from './app.js';
import { type Availability, type Gate, gate } from './services.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
  // Loopback only: no proxy, and no name but 127.0.0.1 resolves, whatever a page asks for.
  '--no-proxy-server',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

/** How long a locator waits for the page by default; a flow on loopback never needs more. */
export const ACTION_TIMEOUT_MS = 5_000;

export async function checkChromium(executable = CHROMIUM_PATH): Promise<Availability> {
  try {
    await fs.promises.access(executable, fs.constants.X_OK);
    return { ok: true };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    return {
      ok: false,
      reason: `Chromium at ${executable} is not there (${code}); install Debian's package: apt-get install chromium`,
    };
  }
}

/** Run, skip (with a loud warning) or fail an end-to-end suite, by whether Chromium is there. */
export function chromiumGate(suite: string, env: NodeJS.ProcessEnv = process.env): Promise<Gate> {
  return gate(suite, () => checkChromium(), env);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
}

/** Starts a test app on 127.0.0.1 with a port of the system's choosing; returns its base URL. */
export async function serve(t: TestApp): Promise<string> {
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = t.app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

export interface PageProblem {
  /** Which context (A, B, C …) and which page in it. */
  where: string;
  kind: 'console' | 'pageerror' | 'csp' | 'http' | 'foreign-request';
  /** The page's URL when it happened. */
  url: string;
  text: string;
  /** For a console message, the resource it is about. */
  source?: string;
}

interface CspReport {
  directive: string;
  blocked: string;
  source: string;
  line: number;
  sample: string;
}

const CSP_BINDING = '__wardenCspViolation';

/**
 * Records every `securitypolicyviolation` into the binding, from before the page's own scripts
 * run. The binding and the init script come in over the DevTools protocol, so the page's CSP
 * does not apply to them.
 */
function reportCspViolations(binding: string): void {
  document.addEventListener('securitypolicyviolation', (e) => {
    const report = (window as unknown as Record<string, (r: unknown) => void>)[binding];
    report?.({
      directive: e.violatedDirective,
      blocked: e.blockedURI,
      source: e.sourceFile,
      line: e.lineNumber,
      sample: e.sample,
    });
  });
}

/**
 * The browser side of a test: contexts that each stand for one person, every page in them
 * watched for problems. `close()` closes every context it opened; call it in afterEach.
 */
export class BrowserSession {
  readonly problems: PageProblem[] = [];
  /** The questions pages asked (window.confirm), in order. */
  readonly dialogs: string[] = [];
  /** How those questions are answered: yes unless a test says otherwise. */
  answerDialogs: 'accept' | 'dismiss' = 'accept';
  /** Every URL a page of this session navigated to, in order. */
  readonly visited: string[] = [];
  readonly #contexts: { label: string; context: BrowserContext }[] = [];
  /** The statuses every page (document) URL answered with. */
  readonly #documents = new Map<string, Set<number>>();

  constructor(
    readonly browser: Browser,
    readonly baseURL: string,
  ) {}

  /** A fresh context (own cookies and storage) with one open, watched page. */
  async person(label: string): Promise<Page> {
    const context = await this.browser.newContext({
      baseURL: this.baseURL,
      viewport: { width: 1400, height: 900 },
      locale: 'en-GB',
      timezoneId: 'UTC',
      serviceWorkers: 'block',
    });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS * 2);
    this.#contexts.push({ label, context });

    let pages = 0;
    context.on('page', (page) => this.#watch(`${label}#${++pages}`, page));
    await context.exposeBinding(CSP_BINDING, (source, report: CspReport) => {
      this.problems.push({
        where: label,
        kind: 'csp',
        url: source.page?.url() ?? '',
        text: `${report.directive} blocked ${report.blocked || '(inline)'} from ${report.source}:${report.line} ${report.sample}`.trim(),
      });
    });
    await context.addInitScript(reportCspViolations, CSP_BINDING);
    return context.newPage();
  }

  #watch(where: string, page: Page): void {
    const origin = new URL(this.baseURL).origin;
    const add = (kind: PageProblem['kind'], text: string, source?: string) =>
      this.problems.push({ where, kind, url: page.url(), text, ...(source ? { source } : {}) });

    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        const at = msg.location();
        add('console', `${msg.text()} (${at.url}:${at.lineNumber})`, at.url);
      } else if (/content security policy/i.test(msg.text())) {
        add('csp', msg.text());
      }
    });
    page.on('pageerror', (error) => add('pageerror', error.stack ?? error.message));
    page.on('dialog', (dialog) => {
      this.dialogs.push(dialog.message());
      void (this.answerDialogs === 'accept' ? dialog.accept() : dialog.dismiss());
    });
    page.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith('data:') && !url.startsWith('about:') && new URL(url).origin !== origin) {
        add('foreign-request', `${request.method()} ${url}`);
      }
    });
    page.on('response', (response) => {
      if (response.request().resourceType() === 'document') {
        const statuses = this.#documents.get(response.url()) ?? new Set<number>();
        this.#documents.set(response.url(), statuses.add(response.status()));
      }
      if (response.status() >= 500) {
        add('http', `${response.status()} ${response.request().method()} ${response.url()}`);
      }
    });
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) this.visited.push(frame.url());
    });
  }

  /** The distinct paths of the app's pages visited so far, in the order first seen. */
  visitedPaths(): string[] {
    const paths = this.visited
      .filter((u) => u.startsWith(this.baseURL))
      .map((u) => new URL(u).pathname);
    return [...new Set(paths)];
  }

  /**
   * Problems as lines that read well in an assertion's diff. Chromium logs a console error for
   * every page that answers 4xx; `expectedPageStatuses` leaves out those of the pages a test
   * meant to get (a refused confirmation answers 400), and nothing else.
   */
  problemLines(opts: { expectedPageStatuses?: number[] } = {}): string[] {
    const expected = new Set(opts.expectedPageStatuses ?? []);
    return this.problems
      .filter((p) => {
        if (p.kind !== 'console' || !p.source) return true;
        const logged = Number(/status of (\d{3})/.exec(p.text)?.[1]);
        const answered = this.#documents.get(p.source)?.has(logged) ?? false;
        return !(answered && expected.has(logged));
      })
      .map((p) => `[${p.where}] ${p.kind} on ${p.url}: ${p.text}`);
  }

  /**
   * Saves a screenshot of every open page into a fresh temp dir (for a failed test) and returns
   * the dir. Never inside the repository.
   */
  async screenshots(name: string): Promise<string> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `warden-e2e-${name.replace(/\W+/g, '-')}-`));
    for (const { label, context } of this.#contexts) {
      for (const [i, page] of context.pages().entries()) {
        await page
          .screenshot({ path: path.join(dir, `${label}-${i + 1}.png`), fullPage: true })
          .catch(() => {});
      }
    }
    return dir;
  }

  async close(): Promise<void> {
    const contexts = this.#contexts.splice(0);
    await Promise.allSettled(contexts.map(({ context }) => context.close()));
  }
}

/** Signs in through the /login form, as a person would, and waits for the page after it. */
export async function signInThroughForm(
  page: Page,
  email: string,
  password: string,
): Promise<void> {
  await page.goto('/login');
  const form = page.locator('main form[action="/login"]');
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForURL((url) => url.pathname !== '/login'),
    form.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

/** The toasts on the page (server flashes and the script's own), once the first is there. */
export async function toastTexts(page: Page): Promise<string[]> {
  const bodies = page.locator('#toasts [data-warden-toast] .toast-body');
  await bodies.first().waitFor({ state: 'visible' });
  return (await bodies.allTextContents()).map((t) => t.trim());
}

/**
 * Registers the hooks of an end-to-end suite on one store kind: one Chromium for the suite, and
 * for each test a fresh app listening on loopback with a fresh BrowserSession. Whatever happens
 * in the test, its contexts and its app are closed after it, and the browser after the suite;
 * a failed test leaves screenshots of its open pages in a temp dir, named on stderr.
 */
export function useBrowser(kind: StoreKind): { readonly t: TestApp; readonly s: BrowserSession } {
  let browser: Browser | undefined;
  let current: { t: TestApp; s?: BrowserSession } | undefined;

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    browser = undefined;
  });

  beforeEach(async () => {
    if (!browser) throw new Error('Chromium did not start');
    const t = await makeApp(kind);
    current = { t };
    current.s = new BrowserSession(browser, await serve(t));
  });
  afterEach(async (ctx) => {
    const open = current;
    current = undefined;
    if (!open) return;
    try {
      if (ctx.task.result?.state === 'fail' && open.s) {
        console.warn(`screenshots of "${ctx.task.name}": ${await open.s.screenshots(kind)}`);
      }
    } finally {
      try {
        await open.s?.close();
      } finally {
        await open.t.close();
      }
    }
  });

  return {
    get t() {
      if (!current) throw new Error('no app outside a test');
      return current.t;
    },
    get s() {
      if (!current?.s) throw new Error('no browser session outside a test');
      return current.s;
    },
  };
}
