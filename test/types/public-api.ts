/**
 * Type test of the public exports, compiled by `tsc` in `npm test` against the built
 * declarations (dist/*.d.ts, through the package's own name). A change that breaks a vendor's
 * code breaks this file. Nothing here runs.
 */
import type { KeyObject } from 'node:crypto';
import {
  createMemoryStore,
  errors,
  generateProfile,
  inspectProfile,
  isProfilesmithError,
  keySigner,
  lintProfile,
  openStore,
  pkcs11Signer,
  signProfile,
  toPkcs12,
  verifyProfile,
  type CertificateStore,
  type ErrorCode,
  type GeneratedProfile,
  type InspectResult,
  type LintResult,
  type Pkcs11Signer,
  type Signer,
  type VerifyResult,
} from 'profilesmith';
import { ProfilesmithError as FromErrors, StoreNotInitialized } from 'profilesmith/errors';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): void {}

expectType<Equal<ReturnType<typeof signProfile>, Promise<Uint8Array>>>();
expectType<Equal<ReturnType<typeof verifyProfile>, Promise<VerifyResult>>>();
expectType<Equal<ReturnType<typeof lintProfile>, Promise<LintResult>>>();
expectType<Equal<ReturnType<typeof inspectProfile>, Promise<InspectResult>>>();
expectType<Equal<ReturnType<typeof generateProfile>, Promise<GeneratedProfile>>>();
expectType<Equal<ReturnType<typeof pkcs11Signer>, Promise<Pkcs11Signer>>>();
expectType<Equal<ReturnType<typeof toPkcs12>, Buffer>>();
expectType<Equal<VerifyResult['valid'], boolean>>();
expectType<Equal<GeneratedProfile['bytes'], Uint8Array>>();
expectType<Equal<Signer['keyType'], 'rsa' | 'ec'>>();

// The stores are CertificateStores; a vendor's own object literal is one too.
export async function stores(key: KeyObject, cert: string): Promise<void> {
  const a: CertificateStore = await createMemoryStore();
  const b: CertificateStore = await openStore('./store', { passphrase: 'x' });
  const signer: Signer = keySigner({ key, certificate: cert });
  // A cloud KMS: any object with the certificate, the chain and an async sign.
  const kms: Signer = { certificate: new Uint8Array(), chain: [], keyType: 'ec', sign: async (d: Uint8Array) => d };
  await generateProfile({ store: a, template: 'exchange-smime', user: 'a@example.com', signer: kms });
  await generateProfile({ store: b, template: '<plist version="1.0"><dict/></plist>', sign: false });
  await signProfile('<plist/>', signer);

  // @ts-expect-error a store is required
  await generateProfile({ template: 'exchange-smime' });
  // @ts-expect-error a signer needs sign()
  const broken: Signer = { certificate: new Uint8Array(), chain: [], keyType: 'rsa' };
  // @ts-expect-error DSA is not a profile-signing key type
  const dsa: Signer = { ...broken, keyType: 'dsa', sign: (d: Uint8Array) => d };
  // @ts-expect-error the PIN is a string
  await pkcs11Signer({ uri: 'pkcs11:', pin: 1234 });
  void dsa;
}

// Errors: stable codes narrow the union; the classes are exported in both places.
export function narrow(err: unknown): string | undefined {
  if (!isProfilesmithError(err)) return undefined;
  const code: ErrorCode = err.code;
  if (err.code === 'ERR_PKCS11') return err.reason;
  if (err.code === 'ERR_STORE_ENTRY_NOT_FOUND') return err.kind;
  // @ts-expect-error not a code profilesmith throws
  if (err.code === 'ERR_NOT_A_CODE') return 'never';
  const same: typeof errors.ProfilesmithError = FromErrors;
  void same;
  void StoreNotInitialized;
  return code;
}
