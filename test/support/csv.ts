/**
 * A strict RFC 4180 reader for the export tests: quoted cells with doubled quotes and line
 * breaks, CRLF records, and an optional UTF-8 byte order mark. Throws on anything malformed,
 * so a badly quoted export fails the test instead of parsing into the wrong cells.
 */
export function parseCsv(text: string): string[][] {
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let i = 0;
  let quoted = false;
  let started = false;

  while (i < src.length) {
    const c = src[i];
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        cell += '"';
        i += 2;
      } else if (c === '"') {
        quoted = false;
        i++;
        if (i < src.length && src[i] !== ',' && src[i] !== '\r') {
          throw new Error(`text after a closing quote at ${i}`);
        }
      } else {
        cell += c;
        i++;
      }
      continue;
    }
    if (c === '"') {
      if (cell !== '') throw new Error(`a quote inside an unquoted cell at ${i}`);
      quoted = true;
      started = true;
      i++;
    } else if (c === ',') {
      row.push(cell);
      cell = '';
      started = true;
      i++;
    } else if (c === '\r' && src[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      started = false;
      i += 2;
    } else if (c === '\n' || c === '\r') {
      throw new Error(`a bare line break outside quotes at ${i}`);
    } else {
      cell += c;
      started = true;
      i++;
    }
  }
  if (quoted) throw new Error('an unterminated quoted cell');
  if (started || cell !== '' || row.length > 0) throw new Error('the last record has no CRLF');
  return rows;
}

/** Records as objects keyed by the header row. */
export function csvObjects(text: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text);
  if (!header) throw new Error('no header row');
  return rows.map((r) => {
    if (r.length !== header.length) {
      throw new Error(`a record of ${r.length} cells under a header of ${header.length}`);
    }
    return Object.fromEntries(header.map((h, i) => [h, r[i]]));
  });
}
