/**
 * Reading a users file as a stream: CSV with a header row (`email` required; `name`,
 * `username` and any template variable as further columns), or a JSON array of objects.
 *
 * @module users
 */
import { createReadStream, promises as fs } from 'node:fs';
import { InputInvalid } from '../errors.js';
import { CsvParser, headerKeys, type CsvRow } from '../util/csv.js';

export interface UserRow {
  /** CSV: the line the row starts on; JSON: the element's position, from 1. */
  line: number;
  values: Record<string, unknown>;
}

/** A JSON users file is parsed whole, so it is bounded; CSV streams at any size. */
export const MAX_JSON_USERS_BYTES = 64 * 1024 * 1024;

const isJson = (path: string) => /\.json$/i.test(path);

async function* csvRows(path: string): AsyncGenerator<CsvRow> {
  const parser = new CsvParser();
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  for await (const chunk of stream) yield* parser.push(chunk as string);
  yield* parser.end();
}

/**
 * Yields the users of a CSV or JSON file one by one.
 * @throws ERR_INPUT_INVALID for a file without an `email` column or not a JSON array
 */
export async function* readUsers(path: string): AsyncGenerator<UserRow> {
  try {
    await fs.access(path);
  } catch (err) {
    throw new InputInvalid('users', `Cannot read the users file "${path}": ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
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
    for (let i = 0; i < list.length; i++) {
      const v = list[i] as unknown;
      yield { line: i + 1, values: v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { email: undefined } };
    }
    return;
  }
  let keys: string[] | undefined;
  for await (const row of csvRows(path)) {
    if (!keys) {
      keys = headerKeys(row);
      if (!keys.includes('email')) throw new InputInvalid('users', `The users file's header row has no "email" column (line ${row.line})`);
      continue;
    }
    yield { line: row.line, values: Object.fromEntries(keys.map((k, i) => [k, (row.fields[i] ?? '').trim()])) };
  }
}

/** How many users the file holds (a streaming pass), for progress and ETA. */
export async function countUsers(path: string): Promise<number> {
  let n = 0;
  for await (const _ of readUsers(path)) n++;
  return n;
}
