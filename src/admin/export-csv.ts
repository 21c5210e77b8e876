/**
 * @module admin/export-csv
 * What every console export shares: CSV cells that a spreadsheet cannot run as formulas,
 * and a streamed attachment whose audit row is written once the last byte is out.
 */
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../events/audit.js';
import { actorOf } from '../http/auth.js';

// Spreadsheets read a cell starting with these as a formula (OWASP "CSV injection").
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

export type Cell = string | number | boolean | null | undefined;

/**
 * One CSV cell: text that a spreadsheet would take for a formula gets a leading `'`, and a
 * cell with a quote, comma or line break is quoted with its quotes doubled (RFC 4180).
 */
export function csvCell(value: Cell): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV record, CRLF-terminated as RFC 4180 has it. */
export function csvLine(cells: readonly Cell[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

/** A UTF-8 byte order mark, so spreadsheets read non-ASCII emails right. */
export const CSV_BOM = '\uFEFF';

/** `sessions-20261204-153012.csv` */
export function exportFilename(base: string, at: number, ext: ExportFormat): string {
  const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${base}-${stamp}.${ext}`;
}

export type ExportFormat = 'csv' | 'json';

/**
 * How a table's rows sit in a file of either format: CSV with a byte order mark and a header
 * record, or a JSON array with one object a line (so a reader can also take it line by line).
 */
export function framing<T>(
  format: ExportFormat,
  csv: { header: readonly string[]; row(item: T): string },
  json: (item: T) => string,
): Pick<ExportSpec<T>, 'head' | 'row' | 'separator' | 'tail'> {
  return format === 'csv'
    ? { head: CSV_BOM + csvLine(csv.header), row: csv.row }
    : { head: '[\n', row: json, separator: ',\n', tail: '\n]\n' };
}

export interface ExportSpec<T> {
  /** Audit action, e.g. `sessions.export`. */
  action: string;
  format: ExportFormat;
  filename: string;
  /** The filters as a query string, for the audit row. */
  filters: string;
  /** Batches of rows; the first is read before the answer starts, so an early failure is a clean error. */
  batches: AsyncIterable<T[]>;
  /** Text before the first row, between rows and after the last. */
  head: string;
  row(item: T): string;
  separator?: string;
  tail?: string;
}

/**
 * Streams an export as an attachment, one batch at a time (memory holds one batch), then
 * writes its audit row with the number of rows. A client that goes away, or a store that
 * fails mid-way, is audited as a failure with the rows sent so far.
 *
 * LIMITATION: once the first bytes are out the status is 200; a failure after that can only
 * cut the file short (a JSON export then does not parse; a CSV one just ends early), and the
 * audit row and the log say so.
 */
export async function sendExport<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  audit: AuditLog,
  spec: ExportSpec<T>,
): Promise<FastifyReply> {
  const started = performance.now();
  // Taken now: once a client walks away its socket, and with it the address, is gone.
  const actor = actorOf(request);
  const record = (complete: boolean, rows: number, reason?: string) =>
    audit
      .write(
        actor,
        {
          action: spec.action,
          target: spec.filters || 'all',
          outcome: complete ? 'success' : 'failure',
          details: { format: spec.format, counts: { rows }, ...(reason ? { reason } : {}) },
          durationMs: Math.round(performance.now() - started),
        },
        request.log,
      )
      .catch((err) => request.log.error({ err, action: spec.action }, 'export not audited'));

  const iterator = spec.batches[Symbol.asyncIterator]();
  let first: IteratorResult<T[]>;
  try {
    first = await iterator.next();
  } catch (err) {
    await record(false, 0, 'the rows could not be read');
    throw err;
  }

  async function* body(): AsyncGenerator<string> {
    let rows = 0;
    let complete = false;
    try {
      yield spec.head;
      let next = first;
      while (!next.done) {
        const parts: string[] = [];
        for (const item of next.value) {
          parts.push((rows > 0 && spec.separator ? spec.separator : '') + spec.row(item));
          rows++;
        }
        if (parts.length > 0) yield parts.join('');
        // A turn of the event loop between batches. While the client keeps up, the socket
        // takes every write at once and the stream asks for the next batch in the same chain
        // of promises: on SQLite, which answers in this thread, a million-session export held
        // every other request for its whole 15 s.
        await nextTurn();
        next = await iterator.next();
      }
      if (spec.tail) yield spec.tail;
      complete = true;
    } finally {
      if (!complete) await iterator.return?.();
      await record(complete, rows, complete ? undefined : 'the export stopped before its end');
    }
  }

  const type =
    spec.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8';
  return reply
    .header('content-type', type)
    .header('content-disposition', `attachment; filename="${spec.filename}"`)
    .header('cache-control', 'no-store')
    .send(Readable.from(body(), { objectMode: false }));
}
