/**
 * The certificate purposes, apart from issue.ts (which loads the certificate code): the CLI
 * offers them as choices of every command that takes --purpose, most of which issue nothing.
 *
 * @module purposes
 */

/** The certificate templates a user certificate is issued from. */
export type CertificatePurpose = 'smime-signing' | 'smime-encryption';

/**
 * The certificate purposes: S/MIME signing and S/MIME encryption.
 * @example
 * for (const purpose of PURPOSES) console.log(purpose, (await store.listCertificates({ purpose })).length)
 */
export const PURPOSES: readonly CertificatePurpose[] = ['smime-signing', 'smime-encryption'];
