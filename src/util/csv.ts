/**
 * A small RFC 4180 reader: a UTF-8 BOM, CRLF or LF line ends, quoted fields holding commas,
 * quotes ("") and line breaks. Each row carries the line it starts on, for error messages.
 * Incremental, so a users file of any size is read in constant memory.
 */
import { InputInvalid } from '../errors.js';

export interface CsvRow {
  line: number;
  fields: string[];
}

/** Feed text in chunks with `push`, then call `end`. */
export class CsvParser {
  /** `,` by default; `;` (Excel in much of Europe) and tab are the others in use. */
  readonly delimiter: string;
  constructor(options: { delimiter?: ',' | ';' | '\t' } = {}) {
    this.delimiter = options.delimiter ?? ',';
  }

  #fields: string[] = [];
  #field = '';
  #quoted = false;
  #afterQuote = false;
  #started = false;
  #line = 1;
  #rowLine = 1;
  #first = true;
  #pendingCR = false;
  /** Longest field accepted; a users file with a 1 MB field is not a users file. */
  static MAX_FIELD = 64 * 1024;

  push(chunk: string): CsvRow[] {
    const rows: CsvRow[] = [];
    let src = chunk;
    // The BOM check waits for the first non-empty chunk (a stream may start with an empty one).
    if (this.#first && src.length > 0) {
      this.#first = false;
      if (src.charCodeAt(0) === 0xfeff) src = src.slice(1);
    }
    for (let i = 0; i < src.length; i++) {
      const c = src[i] as string;
      if (this.#pendingCR) {
        this.#pendingCR = false;
        if (c === '\n') continue;
      }
      if (this.#quoted) {
        if (c === '"') {
          this.#quoted = false;
          this.#afterQuote = true;
        } else {
          if (c === '\n') this.#line++;
          this.#field += c;
        }
      } else if (c === '"' && this.#afterQuote) {
        this.#field += '"';
        this.#quoted = true;
        this.#afterQuote = false;
      } else if (c === '"' && this.#field === '') {
        this.#quoted = true;
        this.#started = true;
      } else if (c === this.delimiter) {
        this.#fields.push(this.#field);
        this.#field = '';
        this.#started = true;
        this.#afterQuote = false;
      } else if (c === '\n' || c === '\r') {
        if (c === '\r') this.#pendingCR = true;
        this.#endRow(rows);
        this.#line++;
        this.#rowLine = this.#line;
      } else {
        this.#field += c;
        this.#started = true;
        this.#afterQuote = false;
      }
      if (this.#field.length > CsvParser.MAX_FIELD) throw new InputInvalid('csv', `Line ${this.#rowLine}: a field is longer than ${CsvParser.MAX_FIELD} characters`);
    }
    return rows;
  }

  #endRow(rows: CsvRow[]): void {
    if (this.#started || this.#field) {
      this.#fields.push(this.#field);
      rows.push({ line: this.#rowLine, fields: this.#fields });
    }
    this.#fields = [];
    this.#field = '';
    this.#started = false;
    this.#afterQuote = false;
  }

  end(): CsvRow[] {
    if (this.#quoted) throw new InputInvalid('csv', `Line ${this.#rowLine}: a quoted field is not closed`);
    const rows: CsvRow[] = [];
    this.#endRow(rows);
    return rows;
  }
}

export function parseCsv(text: string): CsvRow[] {
  const p = new CsvParser();
  return [...p.push(text), ...p.end()];
}

/** Header keys: lower-cased and trimmed, except dotted template variables, which keep their case. */
export function headerKeys(row: CsvRow): string[] {
  return row.fields.map((h) => (h.includes('.') ? h.trim() : h.trim().toLowerCase()));
}

/** Rows as objects keyed by the header row. */
export function parseCsvRecords(text: string): { line: number; values: Record<string, string> }[] {
  const [header, ...rows] = parseCsv(text);
  if (!header) return [];
  const keys = headerKeys(header);
  return rows.map((r) => ({
    line: r.line,
    values: Object.fromEntries(keys.map((k, i) => [k, (r.fields[i] ?? '').trim()])),
  }));
}

/**
 * The delimiter of a CSV file from its header line: the one of `,` `;` and tab that occurs most
 * outside quotes (`,` on a tie, and for a single column).
 */
export function detectDelimiter(headerLine: string): ',' | ';' | '\t' {
  const counts = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const c of headerLine.replace(/^\uFEFF/, '')) {
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ',' || c === ';' || c === '\t')) counts[c]++;
  }
  if (counts[';'] > counts[','] && counts[';'] >= counts['\t']) return ';';
  if (counts['\t'] > counts[','] && counts['\t'] > counts[';']) return '\t';
  return ',';
}

/**
 * One CSV field for a file a person may open in a spreadsheet: a cell starting with `=`, `+`,
 * `-`, `@`, a tab or a carriage return is a formula there (`=HYPERLINK(…)` in a user's name), so
 * it gets a leading `'`, as OWASP's "CSV Injection" advises; then the field is quoted when it
 * holds a comma, a quote or a line break. Every CSV the tool writes goes through this.
 */
export function csvField(s: string): string {
  const cell = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}
