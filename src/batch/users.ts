/**
 * Reading a users file as a stream: CSV with a header row (`email` required; `name`,
 * `username` and any template variable as further columns), or a JSON array of objects.
 * CSV may be UTF-8 (with or without BOM), UTF-16 with a BOM or Windows-1252, separated by
 * `,`, `;` or tab, as spreadsheets in different countries save it.
 *
 * @module users
 */
import { createReadStream, promises as fs } from 'node:fs';
import { InputInvalid } from '../errors.js';
import { printable } from '../certs/email.js';
import { CsvParser, detectDelimiter, headerKeys, type CsvRow } from '../util/csv.js';
import { detectEncoding } from '../util/text-encoding.js';

export interface UserRow {
  /** CSV: the line the row starts on; JSON: the element's position, from 1. */
  line: number;
  values: Record<string, unknown>;
}

/** A JSON users file is parsed whole, so it is bounded; CSV streams at any size. */
export const MAX_JSON_USERS_BYTES = 64 * 1024 * 1024;

const isJson = (path: string) => /\.json$/i.test(path);

/**
 * The rows of a CSV file in UTF-8, UTF-16 (with BOM) or Windows-1252, separated by `,`, `;` or
 * tab: the encoding is found from the bytes, the delimiter from the header line.
 */
async function* csvRows(path: string): AsyncGenerator<CsvRow> {
  const decoder = new TextDecoder(await detectEncoding(path));
  const state: { parser: CsvParser | undefined; head: string } = { parser: undefined, head: '' };
  // The delimiter comes from the header line, so text is held back until that line is whole.
  const feed = (text: string, last: boolean): CsvRow[] => {
    if (!state.parser) {
      state.head += text;
      const nl = state.head.search(/[\r\n]/);
      if (nl < 0 && state.head.length < 64 * 1024 && !last) return [];
      state.parser = new CsvParser({ delimiter: detectDelimiter(nl < 0 ? state.head : state.head.slice(0, nl)) });
      text = state.head;
    }
    return state.parser.push(text);
  };
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) yield* feed(decoder.decode(chunk as Buffer, { stream: true }), false);
  yield* feed(decoder.decode(), true);
  if (state.parser) yield* state.parser.end();
}

/**
 * Yields the users of a CSV or JSON file one by one.
 * @throws ERR_INPUT_INVALID for a file without an `email` column or not a JSON array, an empty file, a directory, a row with more values than the header (an unquoted comma), or an address twice
 */
export async function* readUsers(path: string): AsyncGenerator<UserRow> {
  let stat: Awaited<ReturnType<typeof fs.stat>>;
  try {
    await fs.access(path);
    stat = await fs.stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputInvalid('users', `Cannot read the users file "${path}": ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code ?? 'error'}`);
  }
  if (stat.isDirectory()) throw new InputInvalid('users', `The users file "${path}" is a directory; name a CSV or JSON file`);
  if (!stat.isFile()) throw new InputInvalid('users', `The users file "${path}" is not a file`);
  // A user goes in once: a second row would be merged silently, or counted as another profile.
  const seen = new Map<string, number>();
  const once = (row: UserRow): UserRow => {
    const email = typeof row.values.email === 'string' ? row.values.email.trim().toLowerCase() : '';
    if (!email) return row;
    const first = seen.get(email);
    if (first !== undefined) throw new InputInvalid('users', `The users file has ${printable(row.values.email)} twice, on ${isJson(path) ? 'entries' : 'lines'} ${first} and ${row.line}; a user goes in once (merge the rows)`);
    seen.set(email, row.line);
    return row;
  };
  if (isJson(path)) {
    const stat = await fs.stat(path);
    if (stat.size > MAX_JSON_USERS_BYTES) {
      throw new InputInvalid('users', `The JSON users file is larger than ${MAX_JSON_USERS_BYTES / 1048576} MiB; use CSV, which is streamed`);
    }
    let list: unknown;
    try {
      list = JSON.parse((await fs.readFile(path, 'utf8')).replace(/^\uFEFF/, ''));
    } catch (err) {
      throw new InputInvalid('users', `The users file is not JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(list)) throw new InputInvalid('users', 'A JSON users file must hold an array of objects');
    if (!list.length) throw new InputInvalid('users', `The users file "${path}" holds no users (an empty array)`);
    for (let i = 0; i < list.length; i++) {
      const v = list[i] as unknown;
      yield once({ line: i + 1, values: v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { email: undefined } });
    }
    return;
  }
  let keys: string[] | undefined;
  for await (const row of csvRows(path)) {
    if (!keys) {
      // Blank lines before the header are no header.
      if (row.fields.every((f) => !f.trim())) continue;
      keys = headerKeys(row);
      if (!keys.includes('email')) throw new InputInvalid('users', `The users file's header row has no "email" column (line ${row.line})`);
      continue;
    }
    // A value past the header's columns is a comma that split one (an unquoted "Ann, A."): the
    // row would lose it. Empty ones (a spreadsheet's padding) are nothing lost.
    const extra = row.fields.slice(keys.length);
    if (extra.some((f) => f.trim())) {
      throw new InputInvalid('users', `Line ${row.line} of the users file has ${row.fields.length} fields, its header ${keys.length}: a value holding the separator (an unquoted comma) goes in double quotes, "Example, Ann"`);
    }
    yield once({ line: row.line, values: Object.fromEntries(keys.map((k, i) => [k, (row.fields[i] ?? '').trim()])) });
  }
  if (!keys) throw new InputInvalid('users', `The users file "${path}" is empty: it needs a header row (email[,name]...) and a row per user`);
}

/** How many users the file holds (a streaming pass), for progress and ETA. */
export async function countUsers(path: string): Promise<number> {
  let n = 0;
  for await (const _ of readUsers(path)) n++;
  return n;
}
