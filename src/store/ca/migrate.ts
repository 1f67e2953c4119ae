/**
 * `store migrate` between any two ports: everything the source port keeps is copied into an
 * empty target port in one transaction (a failure leaves the target empty). Sealed keys travel
 * as they are when the target keeps them under the same associated data (file and PostgreSQL
 * do); otherwise they are opened and sealed again under the target's, which needs the
 * passphrase. The passphrase stays the same: the key derivation and check are copied too.
 *
 * Copied: settings, the CA (root, every issuing CA generation, every signer, OCSP responder and
 * SCEP RA, with their keys while they have them), every certificate with its sealed key and
 * issuers, revocations and retirements, amendments, the CRL states (numbers go on increasing,
 * the published CRL stays), both books of one-time links (as hashes: SCEP challenges too).
 * Not copied: caches (rebuilt on use).
 *
 * @module ca-migrate
 */
import { KeyPassphraseInvalid, StoreExists } from '../../errors.js';
import type { SealedKey, Sealer, StoragePort } from '../port/port.js';
import { deriveKey, seal, unseal } from '../secret-box.js';
import { opensCheck } from '../settings.js';
import { caSlug } from '../../certs/publication.js';

/** What {@link migratePort} copied. */
export interface PortMigration {
  certificates: number;
  keys: number;
  revocations: number;
  links: number;
  chains: number;
  credentials: number;
}

/**
 * Copies the store `from` holds into the empty port `to`.
 * @throws ERR_STORE_EXISTS when `to` holds a store already; ERR_KEY_PASSPHRASE when a key must be sealed again and the passphrase was not given or is wrong
 * @example
 * const moved = await migratePort(new MemoryPort(), new MemoryPort(), { passphrase })
 * console.log(`${moved.certificates} certificates moved`)
 */
export async function migratePort(from: StoragePort, to: StoragePort, options: { passphrase?: string } = {}): Promise<PortMigration> {
  const settings = await from.settings();
  if (await to.settings().then(() => true, () => false)) throw new StoreExists(to.location);
  let key: Buffer | undefined;
  if (options.passphrase !== undefined) {
    key = await deriveKey(options.passphrase, settings.kdf);
    if (!opensCheck(key, settings.check)) throw new KeyPassphraseInvalid(from.location, `The passphrase for the store at "${from.location}" is wrong`);
  }
  let keys = 0;
  const carry = (held: SealedKey): Sealer =>
    Object.assign(
      (aad: string) => {
        keys++;
        if (aad === held.aad) return held.sealed;
        if (!key) throw new KeyPassphraseInvalid(from.location, `The target keeps this key under other associated data ("${aad}", not "${held.aad}"): give the passphrase, to seal it again`);
        const der = unseal(key, held.sealed, held.aad);
        if (!der) throw new KeyPassphraseInvalid(from.location, `The key "${held.aad}" in ${from.location} does not decrypt`);
        return seal(key, der, aad);
      },
      { aad: held.aad },
    );
  const records = await from.records();
  const credentials = await from.credentials();
  const revocations = await from.revocations();
  const fps = new Set([...records.flatMap((r) => [...(r.chain ?? []), ...(r.addedChain ?? [])]), ...(settings.signerChain ?? [])]);
  const chains = await from.chains([...fps]);
  const slugs = ['root', ...credentials.filter((c) => c.role === 'issuing').map((c) => caSlug(c.generation ?? 1))];
  const crls = (await Promise.all(slugs.map(async (s) => [s, await from.crlState(s)] as const))).filter(([, st]) => st !== undefined);
  const books = { links: await from.links('links'), challenges: await from.links('challenges') };
  await to.transaction(async (tx) => {
    if (await tx.settings().then(() => true, () => false)) throw new StoreExists(to.location);
    // The current ones last: making one current makes the others of its role not current.
    for (const c of [...credentials].sort((a, b) => Number(a.current) - Number(b.current))) {
      const { key: held, ...rest } = c;
      await tx.putCredential(rest, held ? carry(held) : undefined);
    }
    await tx.putChains([...chains.values()]);
    for (const r of records) {
      const stored = await from.certificate(r.serial);
      if (!stored) continue;
      const { revoked: _r, retired: _t, alsoPurpose, addedChain, ...facts } = r;
      await tx.addCertificate(facts, stored.der, stored.key ? carry(stored.key) : undefined);
      if (alsoPurpose || addedChain?.length) await tx.amend({ serial: r.serial, date: r.created, ...(alsoPurpose ? { alsoPurpose } : {}), ...(addedChain?.length ? { chain: addedChain } : {}) });
    }
    for (const v of revocations) await tx.putRevocation(v);
    for (const [slug, state] of crls) await tx.putCrlState(slug, state!);
    await tx.putLinks('links', books.links);
    await tx.putLinks('challenges', books.challenges);
    // Settings last: a port whose settings mark a store as made (the file store's store.json) is one only when all is in.
    await tx.putSettings(settings);
  });
  return { certificates: records.length, keys, revocations: revocations.length, links: books.links.length + books.challenges.length, chains: chains.size, credentials: credentials.length };
}
