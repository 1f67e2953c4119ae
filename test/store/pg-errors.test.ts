/** What a PostgreSQL failure says: one line that names the server and what to do, by cause. */
import test from 'ava';
import { pgError } from '../../src/store/postgres/db.js';

const at = 'postgres://u@db.example.com/store';

test('a connection that never came up in time is "cannot reach", not "cut"; a cut one is "cut"', (t) => {
  t.is(pgError(at, 'read', Object.assign(new Error('Connection terminated due to connection timeout'), {})).message, `Cannot reach the PostgreSQL server of ${at} (no connection within 10 s); is it running, and is this machine or the server overloaded?`);
  t.is(pgError(at, 'read', new Error('Connection terminated unexpectedly')).message, `The connection to the PostgreSQL server of ${at} was cut (the server restarted or went away); nothing was half-written: run it again`);
  t.is(pgError(at, 'read', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })).message, `Cannot reach the PostgreSQL server of ${at} (connection refused); is it running?`);
});
