/**
 * isProfilesmithError: our errors, from this copy or another (a worker, a duplicated install),
 * and never Node's own, whose codes also start ERR_ (a SCEP request whose junk made Node's
 * decoder throw was once answered 503, "the store's fault", instead of a client error).
 */
import test from 'ava';
import { createPublicKey } from 'node:crypto';
import * as errors from '../../src/errors.js';
import { isProfilesmithError } from '../../src/errors.js';

test("Node's own ERR_* errors are not ours", (t) => {
  const nodeErrors: unknown[] = [];
  try {
    createPublicKey(Buffer.from('junk'));
  } catch (err) {
    nodeErrors.push(err);
  }
  try {
    Buffer.alloc(-1);
  } catch (err) {
    nodeErrors.push(err);
  }
  try {
    new URL('http://[/');
  } catch (err) {
    nodeErrors.push(err);
  }
  t.is(nodeErrors.length, 3);
  for (const err of nodeErrors) {
    t.true(String((err as { code?: string }).code).startsWith('ERR_'), String(err));
    t.false(isProfilesmithError(err), String(err));
  }
});

test('every error class is recognised, by instance and as a copy from another realm (name, code and message only)', (t) => {
  const classes = Object.values(errors).filter((v): v is typeof errors.ProfilesmithError => typeof v === 'function' && typeof (v as { code?: unknown }).code === 'string');
  t.true(classes.length >= 17);
  for (const C of classes) {
    const copy = Object.assign(new Error('from a worker'), { name: C.name, code: C.code });
    t.true(isProfilesmithError(copy), `${C.name} (${C.code}) copied across a realm`);
    const spoof = Object.assign(new TypeError('x'), { code: C.code });
    t.false(isProfilesmithError(spoof), `a TypeError carrying ${C.code} is not ours`);
  }
});
