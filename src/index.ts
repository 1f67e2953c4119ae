/**
 * profilesmith: signed Apple configuration profiles for S/MIME mail on iPhone and iPad.
 *
 * Every CLI capability is a function here first. Nothing runs on import.
 *
 * @module profilesmith
 */

// Generating profiles
export { generateProfile } from './profile/generate.js';
export type { GenerateProfileOptions, GeneratedProfile, Pkcs12Password } from './profile/generate.js';
export { loadTemplate, listTemplates } from './profile/template.js';
export type { Template, TemplateMeta, TemplateVariable, IdentityUse, TemplateRef } from './profile/template.js';
export type { TemplateDataOf } from './profile/generate.js';
export type * from './profile/template-data.gen.js';
export { validateProfile } from './profile/validate.js';
export type { ValidateOptions } from './profile/validate.js';
export type { Pkcs12Opener } from './profile/pkcs12-payloads.js';
export type { Pkcs12Contents } from './certs/pkcs12-read.js';
export type { PlistValue, PlistDict } from './profile/validate.js';
export { parseProfile } from './profile/parse.js';
export type { ParsedProfile, PlistFormat } from './profile/parse.js';
export { lintProfile } from './profile/lint.js';
export { LINT_RULES } from './profile/rules.js';
export type { LintRule, LintRuleId } from './profile/rules.js';
export { lintToSarif } from './profile/sarif.js';
export type { SarifInput } from './profile/sarif.js';
export type { Target } from './profile/rules-schema.js';
export type { LintOptions, LintResult } from './profile/lint.js';
export { inspectProfile } from './profile/inspect.js';
export type { InspectResult, InspectedPayload, InspectedCertificate } from './profile/inspect.js';
export { encryptProfileXml } from './profile/encrypt.js';
export { decryptProfile } from './profile/decrypt.js';

// Batch
export { runBatch } from './batch/run.js';
export type { RunBatchOptions, BatchSummary, BatchProgress, BatchFailure } from './batch/run.js';
export { issueBatch } from './batch/issue-batch.js';
export type { IssueBatchOptions, IssueBatchSummary } from './batch/issue-batch.js';

// Delivery
export { createProfileHandler } from './server/handler.js';
export type { ProfileHandler, ProfileHandlerOptions } from './server/handler.js';
export { LinkBook, LinkLedger, MemoryLinks, PortLinks, linkState } from './server/links.js';
export type { LinkRecord, LinkState, LinkStore } from './server/links.js';

// Signing and verifying (CMS)
export { signProfile, keySigner } from './cms/sign.js';
export type { Signer, KeySignerOptions, SignProfileOptions } from './cms/sign.js';
export { pkcs11Signer } from './cms/pkcs11.js';
export type { Pkcs11Signer, Pkcs11SignerOptions } from './cms/pkcs11.js';
export { parsePkcs11Uri } from './cms/pkcs11-uri.js';
export type { Pkcs11Uri } from './cms/pkcs11-uri.js';
export { verifyProfile } from './cms/verify.js';
export type { ContentCipher } from './cms/envelope.js';
export type { VerifyProfileOptions, VerifyResult, VerifyReason, VerifyReasonCode, CertificateSummary } from './cms/verify.js';

// Certificates and keys
export { createCertificateAuthority } from './certs/ca.js';
export type { CertificateAuthority, CreateCertificateAuthorityOptions } from './certs/ca.js';
export { issueCertificate, certifyPublicKey, PURPOSES } from './certs/issue.js';
export type { CertificatePurpose, Identity, IssuedIdentity, IssueCertificateOptions, CertifyPublicKeyOptions } from './certs/issue.js';
export type { CaRef } from './certs/publication.js';
export { toPkcs12, RANDOM_PASSWORD_ITERATIONS } from './certs/pkcs12.js';
export { readIdentity, readIdentityAsync, checkImport } from './certs/import.js';
export { KdfBudget, DEFAULT_KDF_BUDGET } from './certs/pkcs12-read.js';
export type { IdentityBundle, ImportCheckOptions, ImportCheckResult, ReadIdentityOptions } from './certs/import.js';
export { createCrl, REVOCATION_REASONS } from './certs/crl.js';
export type { RevocationReason, CreateCrlOptions, CrlEntry } from './certs/crl.js';
export type { ToPkcs12Options } from './certs/pkcs12.js';
export type { KeyAlgorithm } from './certs/keys.js';
export { describeCertificate } from './certs/x509.js';
export type { CertificateInfo, KeyUsageName, PublicationSpec } from './certs/x509.js';
export { toPem, fingerprint, toCertificates, distinctIssuers } from './certs/pem.js';
export type { CertificateInput } from './certs/pem.js';
export { assertEmail } from './certs/email.js';

// Stores
export { initStore, openStore, closeStore } from './store/open.js';
export type { AnyStore, PostgresUrl } from './store/open.js';
export { FileStore } from './store/fs-store.js';
export type { InitStoreOptions, OpenStoreOptions, RevokeResult, StoreCa, ResponderIdentity } from './store/fs-store.js';
export { PostgresStore } from './store/postgres/pg-store.js';
export { initPostgresStore, openPostgresStore } from './store/postgres/init.js';
export type { InitPostgresStoreOptions, OpenPostgresStoreOptions } from './store/postgres/init.js';
export { migrateStore } from './store/migrate.js';
export type { MigrateResult } from './store/migrate.js';
export { createMemoryStore, MemoryStore } from './store/memory-store.js';
export type { MemoryStoreOptions, AddIdentityOptions } from './store/memory-store.js';
export { checkStore } from './store/check.js';
export type { StoreFinding } from './store/check.js';
export { statusOf, compareRecords, findRecord, planReimport, removalOf, isRemovedUser, servesPurpose, keyOnDeviceError } from './store/store.js';
export type {
  CertificateStore,
  LifecycleStore,
  ImportIdentityOptions,
  ImportIdentityResult,
  RemoveUserResult,
  CertificateRecord,
  CertificateListing,
  CertificateStatus,
  ListCertificatesOptions,
  IssueUserCertificateOptions,
  IssueDeviceCertificateOptions,
  EnrollingStore,
  TrustChain,
} from './store/store.js';
export { resolveStoreDir } from './store/location.js';
// The CA over a storage port: a backend implements the port (see examples/bring-your-own-store)
export { CaStore } from './store/ca/ca-store.js';
export type { OpenCaOptions } from './store/ca/ca-store.js';
export { initializeCa } from './store/ca/init.js';
export type { InitializeCaOptions } from './store/ca/init.js';
export { migratePort } from './store/ca/migrate.js';
export type { PortMigration } from './store/ca/migrate.js';
export { MemoryPort } from './store/memory/port.js';
export type {
  StoragePort,
  PortReads,
  PortTransaction,
  PortCache,
  SealingBox,
  BuiltPkcs12,
  SealedKey,
  Sealer,
  Revocation,
  Amendment,
  RecordQuery,
  StoredCertificate,
  Credential,
  CredentialRole,
  CrlState,
  LinkBookName,
  StoreSettings,
} from './store/port/port.js';
export type { Sealed, KdfParams } from './store/secret-box.js';

// Publishing revocation: CRLs, CA certificates and OCSP over HTTP
export { createPkiHandler, isPkiPath } from './pki/handler.js';
export { createScepService, SCEP_CAPABILITIES, MAX_SCEP_MESSAGE } from './scep/service.js';
export type { ScepServiceOptions, ScepHttpRequest, ScepHttpResponse } from './scep/service.js';
export { createScepHandler } from './scep/handler.js';
export type { ScepHandlerOptions } from './scep/handler.js';
export type { FailInfo } from './scep/message.js';
export { parseCertificateRequest } from './certs/csr.js';
export type { CertificateRequest } from './certs/csr.js';
export type { PkiHandler, PkiHandlerOptions, PkiRoute, PkiSource, SerialStatus } from './pki/handler.js';

// Errors (also at "profilesmith/errors")
export * as errors from './errors.js';
export { ProfilesmithError, isProfilesmithError } from './errors.js';
export type { AnyProfilesmithError, ErrorCode, ProfileIssue } from './errors.js';

// The CLI (src/cli) is deliberately not exported: it is a thin client of the functions above.
