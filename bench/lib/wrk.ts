/**
 * @module bench/lib/wrk
 * One load run with wrk (Debian's package): requests per second, latency percentiles from
 * `--latency`, and how many answers were not 2xx/3xx (a run with any is reported as failed,
 * never as a figure).
 */
import { run } from './procs.js';

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
}

export interface LoadOptions {
  url: string;
  cookie?: string;
  connections?: number;
  threads?: number;
  seconds?: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  if (unit === 'us') return n / 1000;
  if (unit === 's') return n * 1000;
  if (unit === 'm') return n * 60_000;
  return n;
}

export async function wrk(options: LoadOptions): Promise<LoadResult> {
  const args = [
    `-t${options.threads ?? 2}`,
    `-c${options.connections ?? 50}`,
    `-d${options.seconds ?? 10}s`,
    '--latency',
    '--timeout',
    '5s',
  ];
  if (options.cookie) args.push('-H', `Cookie: ${options.cookie}`);
  args.push(options.url);
  const { stdout } = await run('wrk', args, { maxBuffer: 1024 * 1024 });
  return parseWrk(stdout);
}

export function parseWrk(out: string): LoadResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1], m[2]) : Number.NaN;
  };
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (!rps || !total) throw new Error(`wrk output not understood:\n${out}`);
  return {
    rps: Number(rps[1]),
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    requests: Number(total[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    errors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}
