/**
 * A Server-Sent Events reader for the live suites: fetch over a real loopback socket (inject()
 * would wait for a stream that never ends), with the frames parsed as a browser would and a
 * wait for the first frame that matches.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

export interface SseFrame {
  event: string;
  /** The data parsed as JSON (every data line Warden sends is JSON). */
  data: unknown;
  /** When the frame arrived, from performance.now(). */
  at: number;
}

/** Starts the app on 127.0.0.1 with a port of the system's choosing; returns its base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

export class SseStream {
  readonly frames: SseFrame[] = [];
  readonly comments: string[] = [];
  /** Everything received, as text (to prove what is never in it). */
  raw = '';
  /** Resolves when the server ends the stream (or it is closed here). */
  readonly ended: Promise<void>;
  /** True once the stream is over. */
  done = false;
  #waiters: (() => void)[] = [];
  #abort = new AbortController();

  private constructor(
    readonly status: number,
    readonly headers: Headers,
    body: ReadableStream<Uint8Array> | null,
  ) {
    this.ended = body ? this.#read(body) : Promise.resolve();
  }

  /** Opens the stream with a cookie header; resolves once the response headers are in. */
  static async open(url: string, cookie: string): Promise<SseStream> {
    const abort = new AbortController();
    const res = await fetch(url, {
      headers: { cookie, accept: 'text/event-stream' },
      // The status the server chose: anonymous browsers get a redirect to sign-in.
      redirect: 'manual',
      signal: abort.signal,
    });
    const stream = new SseStream(res.status, res.headers, res.ok ? res.body : null);
    stream.#abort = abort;
    if (!res.ok) await res.body?.cancel();
    return stream;
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true });
        this.raw += text;
        buffer += text;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          this.#parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // Aborted here, or the connection was cut: either way the stream is over.
    } finally {
      this.done = true;
      this.#wake();
    }
  }

  #parse(block: string): void {
    let event = 'message';
    let data: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (data !== undefined) {
      this.frames.push({ event, data: JSON.parse(data), at: performance.now() });
      this.#wake();
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /**
   * The first frame (from index `from`) matching the event name and test, waiting up to
   * `timeoutMs` for it; rejects naming what did arrive.
   */
  async next<T = Record<string, unknown>>(
    event: string,
    test: (data: T) => boolean = () => true,
    opts: { timeoutMs?: number; from?: number } = {},
  ): Promise<T> {
    const deadline = performance.now() + (opts.timeoutMs ?? 2_000);
    for (;;) {
      const ended = this.done;
      const hit = this.frames
        .slice(opts.from ?? 0)
        .find((f) => f.event === event && test(f.data as T));
      if (hit) return hit.data as T;
      const left = deadline - performance.now();
      if (left <= 0 || ended) {
        const seen = this.frames.map((f) => `${f.event} ${JSON.stringify(f.data)}`).join('\n');
        throw new Error(
          `no "${event}" frame matched${ended ? ' before the stream ended' : ` within ${opts.timeoutMs ?? 2_000} ms`}; got:\n${seen}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.#abort.abort();
  }
}
