/**
 * @module bench/lib/client
 * A small HTTP client with a cookie jar, for signing in to Warden and the peers before the
 * load runs, and for timing console requests one at a time.
 */

export class Client {
  readonly base: string;
  readonly jar = new Map<string, string>();
  #csrf: string | undefined;

  constructor(base: string) {
    this.base = base;
  }

  get cookie(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  #keep(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  async request(
    method: string,
    path: string,
    init: { json?: unknown; form?: Record<string, string>; accept?: string } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { cookie: this.cookie };
    if (init.accept) headers.accept = init.accept;
    let body: string | undefined;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    } else if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    if (method !== 'GET' && this.#csrf) headers['x-csrf-token'] = this.#csrf;
    const res = await fetch(this.base + path, { method, headers, body, redirect: 'manual' });
    this.#keep(res);
    return res;
  }

  async get(path: string, accept = 'application/json'): Promise<Response> {
    return this.request('GET', path, { accept });
  }

  /** GET /api/auth/csrf, then POST /api/auth/login (Warden). */
  async wardenLogin(email: string, password: string): Promise<void> {
    const csrf = await this.get('/api/auth/csrf');
    this.#csrf = ((await csrf.json()) as { token: string }).token;
    const res = await this.request('POST', '/api/auth/login', { json: { email, password } });
    if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
    // The token is bound to the session: take the signed-in one's.
    const again = await this.get('/api/auth/csrf');
    this.#csrf = ((await again.json()) as { token: string }).token;
  }

  /** A JSON POST with the CSRF header; throws unless 2xx. */
  async postJson<T>(path: string, json: unknown): Promise<T> {
    const res = await this.request('POST', path, { json, accept: 'application/json' });
    const text = await res.text();
    if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }
}
