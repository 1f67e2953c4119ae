/**
 * The file store's administration: the PKI URL, rotating the profile signer and the issuing
 * CA, importing an outside signer, and changing the passphrase.
 *
 * @module file-admin
 */
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { CertificateInvalid } from '../../errors.js';
import { createIssuingCa, createProfileSigner } from '../../certs/ca.js';
import type { IdentityBundle } from '../../certs/import.js';
import { fingerprint, normalizeSerial, toPem, type CertificateInput } from '../../certs/pem.js';
import { certificateBasics } from '../../certs/x509.js';
import { caSlug, checkPkiUrl, checkScepUrl } from '../../certs/publication.js';
import { atomicWrite } from '../fs-util.js';
import { checkNewPassphrase, checkSignerImport } from '../issuance.js';
import { issuingPaths, OCSP_DIR, SCEP_DIR, signerPaths } from '../pki-files.js';
import { deriveKey, newKdfParams } from '../secret-box.js';
import { SERIAL } from './record-index.js';
import type { FileStore } from './file-store.js';
import type { StoreMeta } from './meta.js';
import { sealKey } from './meta.js';
import { sealCheck } from '../settings.js';
import { writeChains } from './entries.js';
import { PKCS12_CACHE } from './pkcs12-cache.js';

/**
 * Sets (or, with undefined, clears) the PKI base URL. It applies to certificates issued
 * from then on; those issued before keep the URLs they carry.
 * @throws ERR_INPUT_INVALID for a URL that is not http(s)
 */
export function setPkiUrl(store: FileStore, url: string | undefined): Promise<string | undefined> {
  return setMetaUrl(store, 'pkiUrl', url === undefined ? undefined : checkPkiUrl(url));
}

/** Sets (or, with undefined, clears) the URL of the store's SCEP server, written into SCEP profiles. */
export function setScepUrl(store: FileStore, url: string | undefined): Promise<string | undefined> {
  return setMetaUrl(store, 'scepUrl', url === undefined ? undefined : checkScepUrl(url));
}

/** One URL setting of store.json, changed under the lock. */
async function setMetaUrl(store: FileStore, field: 'pkiUrl' | 'scepUrl', checked: string | undefined): Promise<string | undefined> {
  await store.write(async () => {
    const next: StoreMeta = { ...store.meta };
    if (checked) next[field] = checked;
    else delete next[field];
    await store.putMeta(next);
  });
  return checked;
}

export function caOptions(store: FileStore) {
  const m = store.meta;
  return { organization: m.organization, now: store.now, ...(m.keyAlgorithm ? { keyAlgorithm: m.keyAlgorithm } : {}), ...(m.pkiUrl ? { pkiUrl: m.pkiUrl } : {}) };
}

/**
 * A new profile-signing identity from the current issuing CA; the previous signer is
 * revoked (superseded) and its key deleted. Profiles signed from then on verify with the new one.
 */
export async function rotateSigner(store: FileStore): Promise<{ previous: string; serial: string }> {
  store.requireKey('rotate the profile signer');
  return store.write(() => rotateSignerLocked(store));
}

export async function rotateSignerLocked(store: FileStore): Promise<{ previous: string; serial: string }> {
  const meta = store.meta;
  const key = store.requireKey('rotate the profile signer');
  const gen = meta.issuing ?? 1;
  const oldPaths = signerPaths(meta);
  const previous = normalizeSerial(certificateBasics(await store.readCert(oldPaths.cert)).serial);
  const signer = await createProfileSigner(await store.caIdentity(gen), gen, caOptions(store));
  const serial = normalizeSerial(certificateBasics(signer.certificate).serial);
  const paths = signerPaths({ signer: serial });
  await atomicWrite(join(store.dir, `${paths.key}.${meta.keyGeneration}`), sealKey(key, signer.privateKey, paths.key), 0o600);
  await atomicWrite(join(store.dir, paths.cert), toPem(signer.certificate), 0o644);
  const { signerChain: outside, ...rest } = meta;
  await store.putMeta({ ...rest, signer: serial, signerIssuing: gen });
  // An imported signer belongs to an outside CA, which alone can revoke it.
  if (!outside) await store.putRevocations([{ serial: previous, date: store.now().toISOString(), reason: 'superseded', kind: 'revoked', ca: caSlug(meta.signerIssuing ?? 1) }]);
  await fs.rm(join(store.dir, `${oldPaths.key}.${meta.keyGeneration}`), { force: true });
  return { previous, serial };
}

/**
 * Makes an identity from an outside CA the profile signer (an organization's certificate from
 * a publicly trusted CA: profiles then show "Verified" on any iPhone without a trust profile).
 * The key is sealed like every other; the issuers are kept for the signature. The store's own
 * previous signer is revoked (superseded).
 * @throws ERR_CERT_INVALID for an expired certificate, a CA certificate, or one without digitalSignature
 */
export async function importSigner(store: FileStore, bundle: IdentityBundle, options: { chain?: CertificateInput } = {}): Promise<{ previous: string; serial: string; warnings: string[] }> {
  const key = store.requireKey('import a signer');
  const now = store.now();
  const { chain, serial, warnings } = await checkSignerImport(bundle, options, now);
  return store.write(async () => {
    const meta = store.meta;
    const oldPaths = signerPaths(meta);
    const previous = normalizeSerial(certificateBasics(await store.readCert(oldPaths.cert)).serial);
    if (previous === serial) throw new CertificateInvalid('duplicate', 'This certificate is the profile signer already');
    await writeChains(store, chain);
    const paths = signerPaths({ signer: serial });
    await atomicWrite(join(store.dir, `${paths.key}.${meta.keyGeneration}`), sealKey(key, bundle.privateKey, paths.key), 0o600);
    await atomicWrite(join(store.dir, paths.cert), toPem(bundle.certificate), 0o644);
    await store.putMeta({ ...meta, signer: serial, signerChain: chain.map((c) => fingerprint(c)) });
    if (!meta.signerChain) await store.putRevocations([{ serial: previous, date: now.toISOString(), reason: 'superseded', kind: 'revoked', ca: caSlug(meta.signerIssuing ?? 1) }]);
    await fs.rm(join(store.dir, `${oldPaths.key}.${meta.keyGeneration}`), { force: true });
    return { previous, serial, warnings };
  });
}

/**
 * A new issuing CA under the same root (with the store's name constraints and PKI URLs);
 * new certificates come from it, those of the old one stay valid under it. The profile
 * signer moves to the new CA too (the old signer is revoked, superseded), so the old CA
 * can be revoked on the root's CRL once its last user certificate is gone.
 */
export async function rotateIssuing(store: FileStore): Promise<{ generation: number; serial: string; signer: string }> {
  store.requireKey('rotate the issuing CA');
  return store.write(async () => {
    const meta = store.meta;
    const key = store.requireKey('rotate the issuing CA');
    const generation = (meta.issuing ?? 1) + 1;
    const root = await store.caIdentity('root');
    const ca = await createIssuingCa(root, generation, { ...caOptions(store), ...(meta.permittedEmailDomains?.length ? { permittedEmailDomains: meta.permittedEmailDomains } : {}) });
    const paths = issuingPaths(generation);
    await atomicWrite(join(store.dir, `${paths.key}.${meta.keyGeneration}`), sealKey(key, ca.privateKey, paths.key), 0o600);
    await atomicWrite(join(store.dir, paths.cert), toPem(ca.certificate), 0o644);
    await store.putMeta({ ...meta, issuing: generation });
    const { serial: signer } = await rotateSignerLocked(store);
    return { generation, serial: normalizeSerial(certificateBasics(ca.certificate).serial), signer };
  });
}

/** Relative paths (without generation) of every sealed key in the store. */
export async function keyFiles(store: FileStore): Promise<string[]> {
  const meta = store.meta;
  const names = await fs.readdir(join(store.dir, 'certs')).catch(() => [] as string[]);
  const issuing = Array.from({ length: meta.issuing ?? 1 }, (_, i) => issuingPaths(i + 1).key);
  const services = async (dir: string) => (await fs.readdir(join(store.dir, dir)).catch(() => [] as string[])).filter((n) => n.endsWith('.pem')).map((n) => `${dir}/${n.slice(0, -4)}.key`);
  // A device's certificate (SCEP) has no key in the store.
  const entries = names.filter((n) => SERIAL.test(n)).map((n) => `certs/${n}/key`);
  const held = await Promise.all(entries.map((rel) => fs.access(join(store.dir, `${rel}.${meta.keyGeneration}`)).then(() => true, () => false)));
  return ['ca/root.key', ...issuing, signerPaths(meta).key, ...(await services(OCSP_DIR)), ...(await services(SCEP_DIR)), ...entries.filter((_, i) => held[i])];
}

/**
 * Re-encrypts every private key under a new passphrase (new salt, new key), all or none.
 * @throws ERR_KEY_PASSPHRASE when the current passphrase was not given; ERR_STORE_IO when a key does not decrypt
 */
export async function changePassphrase(store: FileStore, newPassphrase: string, options: { kdfCost?: number } = {}): Promise<number> {
  checkNewPassphrase(newPassphrase);
  store.requireKey('change the passphrase');
  return store.write(async () => {
    const gen = store.meta.keyGeneration;
    const next = gen + 1;
    const kdf = newKdfParams(options.kdfCost ?? Math.log2(store.meta.kdf.N));
    const newKey = await deriveKey(newPassphrase, kdf);
    const files = await keyFiles(store);
    const written: string[] = [];
    try {
      for (const rel of files) {
        const key = await store.readKey(rel);
        const path = join(store.dir, `${rel}.${next}`);
        await atomicWrite(path, sealKey(newKey, key, rel), 0o600);
        written.push(path);
      }
      const meta: StoreMeta = { ...store.meta, kdf, check: sealCheck(newKey), keyGeneration: next };
      await atomicWrite(join(store.dir, 'store.json'), JSON.stringify(meta, null, 2) + '\n', 0o600);
      store.setMeta(meta);
      store.setKey(newKey);
      store.issuers.clear();
      store.responders.clear();
    } catch (err) {
      await Promise.all(written.map((p) => fs.rm(p, { force: true })));
      throw err;
    }
    // Committed: the old generation (keys and cached PKCS#12 files) is garbage now.
    await Promise.all(files.map((rel) => fs.rm(join(store.dir, `${rel}.${gen}`), { force: true })));
    const cached = await fs.readdir(join(store.dir, PKCS12_CACHE)).catch(() => [] as string[]);
    await Promise.all(cached.filter((f) => f.endsWith(`.${gen}`)).map((f) => fs.rm(join(store.dir, PKCS12_CACHE, f), { force: true })));
    // Earlier versions kept the cache in each entry (certs/<serial>/p12.<generation>).
    await Promise.all(files.filter((rel) => rel.startsWith('certs/')).map((rel) => fs.rm(join(store.dir, `${dirname(rel)}/p12.${gen}`), { force: true })));
    store.pkcs12.forget();
    return files.length;
  });
}
