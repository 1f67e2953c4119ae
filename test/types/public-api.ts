/**
 * Type test of the public exports, compiled by `tsc` in `npm test` against the built
 * declarations (dist/*.d.ts, through the package's own name). A change that breaks a vendor's
 * code breaks this file. Nothing here runs.
 */
import type { KeyObject } from 'node:crypto';
import {
  FileStore,
  createMemoryStore,
  createProfileHandler,
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
  type LifecycleStore,
  type ErrorCode,
  type GeneratedProfile,
  type InspectResult,
  type LintResult,
  type Pkcs11Signer,
  type Signer,
  type VerifyResult,
  type VerifyReason,
  type VerifyReasonCode,
  type LintRuleId,
  type ProfileIssue,
  type CertificateInput,
  type BuiltinTemplateData,
  type BuiltinTemplateName,
  type ExchangeSmimeData,
  type ProfileHandler,
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
// The code unions.
expectType<Equal<VerifyReason['code'], VerifyReasonCode>>();
expectType<Equal<ProfileIssue['rule'], LintRuleId>>();
expectType<'signature-invalid' extends VerifyReasonCode ? true : false>();
expectType<'uuid-reference' extends LintRuleId ? true : false>();
expectType<'ERR_SIGNER_INVALID' extends ErrorCode ? true : false>();
expectType<Equal<'not-a-rule' extends LintRuleId ? true : false, false>>();
expectType<Equal<keyof BuiltinTemplateData, BuiltinTemplateName>>();
expectType<Equal<ExchangeSmimeData['exchange']['host'], string>>();
// Certificates as Node takes them.
expectType<Equal<CertificateInput, string | Uint8Array | readonly (string | Uint8Array)[]>>();

// The stores are CertificateStores; a vendor's own object literal is one too.
export async function stores(key: KeyObject, cert: string): Promise<void> {
  const a: CertificateStore = await createMemoryStore();
  const b: CertificateStore = await openStore('./store', { passphrase: 'x' });
  // The whole lifecycle is in the types of both stores: revocation, CRLs, links.
  const la: LifecycleStore = await createMemoryStore({ pkiUrl: 'http://pki.example.com' });
  const lb: LifecycleStore = await openStore('./store', { passphrase: 'x' });
  await la.revokeCertificate('01', 'keyCompromise');
  await lb.links.consume('token');
  // @ts-expect-error not a revocation reason
  await la.revokeCertificate('01', 'bored');
  // @ts-expect-error stores are made by openStore, initStore and createMemoryStore, not by their constructors
  new FileStore();
  const fileStore = await openStore('./store', { passphrase: 'x' });
  // @ts-expect-error the store key is not in the types (stripInternal)
  fileStore.derivedKey();
  // @ts-expect-error nor is unlocking with a raw key
  fileStore.unlockWithKey(new Uint8Array(32));
  const signer: Signer = keySigner({ key, certificate: cert });
  // A cloud KMS: any object with the certificate, the chain and an async sign.
  const kms: Signer = { certificate: new Uint8Array(), chain: [], keyType: 'ec', sign: async (d: Uint8Array) => d };
  await generateProfile({ store: a, template: 'exchange-smime', user: 'a@example.com', signer: kms });
  await generateProfile({ store: b, template: { source: '<plist version="1.0"><dict/></plist>' }, sign: false });
  await generateProfile({ store: b, template: { path: './site.mobileconfig.hbs' }, data: { anything: { goes: 1 } } });

  // Typed template data: a built-in named by a literal gets its generated type.
  await generateProfile({ store: a, template: 'exchange-smime', user: 'a@example.com', data: { exchange: { host: 'mail.example.com', ssl: true }, smime: { encryptByDefault: true } } });
  await generateProfile({ store: a, template: { builtin: 'imap-smime' }, user: 'a@example.com', data: { imap: { host: 'imap.example.com', port: 993 }, smtp: { host: 'smtp.example.com' } } });
  // @ts-expect-error a typo of a key
  await generateProfile({ store: a, template: 'exchange-smime', user: 'a@example.com', data: { exchange: { host: 'h', hots: 'x' } } });
  // @ts-expect-error a boolean given as a string
  await generateProfile({ store: a, template: 'exchange-smime', user: 'a@example.com', data: { exchange: { host: 'h', ssl: 'yes' } } });
  // @ts-expect-error exchange.host is required and has no default
  await generateProfile({ store: a, template: 'exchange-smime', user: 'a@example.com', data: { exchange: {} } });
  // @ts-expect-error an enumerated variable outside its values
  await generateProfile({ store: a, template: 'root-ca', data: { targetDeviceType: 9 } });
  const dynamic: string = 'exchange-smime';
  await generateProfile({ store: a, template: dynamic, user: 'a@example.com', data: { exchange: { host: 'h' } } });
  // @ts-expect-error a template is a name, { builtin }, { path } or { source }
  await generateProfile({ store: a, template: { file: './x.hbs' } });
  await signProfile('<plist/>', signer);

  // @ts-expect-error a store is required
  await generateProfile({ template: 'exchange-smime' });
  // @ts-expect-error a signer needs sign()
  const broken: Signer = { certificate: new Uint8Array(), chain: [], keyType: 'rsa' };
  // @ts-expect-error DSA is not a profile-signing key type
  const dsa: Signer = { ...broken, keyType: 'dsa', sign: (d: Uint8Array) => d };
  // The download handler mounts beside others: it says whether it answered.
  const profiles: ProfileHandler = createProfileHandler({ store: la, links: la.links, template: 'exchange-smime', data: { exchange: { host: 'h' } }, basePath: '/enroll', otherPaths: 'pass' });
  expectType<Equal<ReturnType<typeof profiles>, boolean>>();
  // @ts-expect-error otherPaths is 'not-found' or 'pass'
  createProfileHandler({ store: la, links: la.links, template: 'exchange-smime', otherPaths: 'ignore' });
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
