import test from 'ava';
import { parseCsv, parseCsvRecords } from '../../src/util/csv.js';

test('BOM, CRLF, quoted commas, doubled quotes and line breaks inside quotes', (t) => {
  const rows = parseCsv('\uFEFFemail,name\r\n"a@example.com","Doe, Jane ""JD"""\r\nb@example.com,"two\nlines"\r\n\r\nc@example.com,C');
  t.deepEqual(rows, [
    { line: 1, fields: ['email', 'name'] },
    { line: 2, fields: ['a@example.com', 'Doe, Jane "JD"'] },
    { line: 3, fields: ['b@example.com', 'two\nlines'] },
    { line: 6, fields: ['c@example.com', 'C'] },
  ]);
  t.deepEqual(parseCsvRecords('Email , Name\nx@example.com,X\n')[0], { line: 2, values: { email: 'x@example.com', name: 'X' } });
});

test('an unclosed quote names its line', (t) => {
  t.throws(() => parseCsv('a,b\n"open,c\n'), { code: 'ERR_INPUT_INVALID', message: 'Line 2: a quoted field is not closed' });
});
