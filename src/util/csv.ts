/**
 * A small RFC 4180 reader: a UTF-8 BOM, CRLF or LF line ends, quoted fields holding commas,
 * quotes ("") and line breaks. Each row carries the line it starts on, for error messages.
 */
import { InputInvalid } from '../errors.js';

export interface CsvRow {
  line: number;
  fields: string[];
}

export function parseCsv(text: string): CsvRow[] {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: CsvRow[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let started = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as string;
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      started = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      started = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      if (started || field) {
        fields.push(field);
        rows.push({ line: rowLine, fields });
      }
      fields = [];
      field = '';
      started = false;
      line++;
      rowLine = line;
    } else {
      field += c;
      started = true;
    }
  }
  if (quoted) throw new InputInvalid('csv', `Line ${rowLine}: a quoted field is not closed`);
  if (started || field) {
    fields.push(field);
    rows.push({ line: rowLine, fields });
  }
  return rows;
}

/** Rows as objects keyed by the header row (lower-cased, trimmed). */
export function parseCsvRecords(text: string): { line: number; values: Record<string, string> }[] {
  const [header, ...rows] = parseCsv(text);
  if (!header) return [];
  const keys = header.fields.map((h) => h.trim().toLowerCase());
  return rows.map((r) => ({
    line: r.line,
    values: Object.fromEntries(keys.map((k, i) => [k, (r.fields[i] ?? '').trim()])),
  }));
}
