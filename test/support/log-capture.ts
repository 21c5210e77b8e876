/**
 * @module test/support/log-capture
 * A stream for makeApp's `logStream` and the lines written to it: `lines` as written, `records()`
 * parsed (pino writes one JSON object per line). A line that arrives in two writes is kept whole.
 */
import { PassThrough } from 'node:stream';

export function logCapture() {
  const stream = new PassThrough();
  const lines: string[] = [];
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) if (line) lines.push(line);
  });
  return {
    stream,
    lines,
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
