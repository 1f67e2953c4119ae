import test from 'ava';
import { csvField, parseCsv, parseCsvRecords } from '../../src/util/csv.js';

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

test('csvField neutralises formula cells with a leading \' and quotes what needs it (issue 28)', (t) => {
  t.is(csvField('=1+2'), "'=1+2");
  t.is(csvField('+1'), "'+1");
  t.is(csvField('-1'), "'-1");
  t.is(csvField('@SUM(A1)'), "'@SUM(A1)");
  t.is(csvField('\tx'), "'\tx");
  t.is(csvField('\rx'), `"'\rx"`);
  t.is(csvField('=HYPERLINK("a","b")'), `"'=HYPERLINK(""a"",""b"")"`);
  t.is(csvField('a=b'), 'a=b');
  t.is(csvField('Doe, Jane'), '"Doe, Jane"');
  t.is(csvField(''), '');
});
