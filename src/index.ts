/**
 * profilesmith: signed Apple configuration profiles for S/MIME mail on iPhone and iPad.
 *
 * Every CLI capability is a function here first. Nothing runs on import.
 *
 * @module profilesmith
 */

// Generating profiles
export { generateProfile, selectIdentities } from './profile/generate.js';
export type { GenerateProfileOptions, GeneratedProfile, Pkcs12Password } from './profile/generate.js';
export { loadTemplate, listTemplates, applySetValues, resolveData } from './profile/template.js';
export type { Template, TemplateMeta, TemplateVariable, IdentityUse } from './profile/template.js';
export { renderTemplate, plistDate } from './profile/render.js';
export { validateProfile, validateXml, parseXmlPlist } from './profile/validate.js';
export type { PlistValue, PlistDict } from './profile/validate.js';
export { stableUuid, defaultProfileIdentifier } from './profile/ids.js';

// Signing and verifying (CMS)
export { signProfile, keySigner } from './cms/sign.js';
export type { Signer, KeySignerOptions, SignProfileOptions } from './cms/sign.js';
export { verifyProfile } from './cms/verify.js';
export type { VerifyProfileOptions, VerifyResult, VerifyReason, CertificateSummary } from './cms/verify.js';

// Certificates and keys
export { createCertificateAuthority } from './certs/ca.js';
export type { CertificateAuthority, CreateCertificateAuthorityOptions } from './certs/ca.js';
export { issueCertificate, PURPOSES } from './certs/issue.js';
export type { CertificatePurpose, Identity, IssueCertificateOptions } from './certs/issue.js';
export { toPkcs12, randomPassword } from './certs/pkcs12.js';
export type { ToPkcs12Options } from './certs/pkcs12.js';
export { generateKeyPair } from './certs/keys.js';
export type { KeyAlgorithm, KeyPair } from './certs/keys.js';
export { describeCertificate } from './certs/x509.js';
export type { CertificateInfo } from './certs/x509.js';
export { toPem, pemBlocks, fingerprint } from './certs/pem.js';
export { assertEmail } from './certs/email.js';

// Stores
export { initStore, openStore, FileStore } from './store/fs-store.js';
export type { InitStoreOptions, OpenStoreOptions } from './store/fs-store.js';
export { statusOf } from './store/store.js';
export type {
  CertificateStore,
  CertificateRecord,
  CertificateListing,
  CertificateStatus,
  ListCertificatesOptions,
  IssueUserCertificateOptions,
  TrustChain,
} from './store/store.js';
export { resolveStoreDir } from './store/location.js';

// Errors (also at "profilesmith/errors")
export * as errors from './errors.js';
export { ProfilesmithError, isProfilesmithError } from './errors.js';
export type { AnyProfilesmithError, ErrorCode, ProfileIssue } from './errors.js';

// The CLI (src/cli) is deliberately not exported: it is a thin client of the functions above.
