/**
 * The store key of one CA instance: derived from the passphrase (or handed over by a batch's
 * main thread), checked against the store's check value, and used to seal keys before they
 * reach the port and to open them after. The key lives in a private field: not serialized by
 * JSON.stringify, not shown by util.inspect.
 *
 * @module ca-keyring
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { KeyPassphraseInvalid, StoreIOError } from '../../errors.js';
import type { SealedKey, Sealer, SealingBox } from '../port/port.js';
import { deriveKey, seal, sealBytes, unseal, unsealBytes, type Sealed } from '../secret-box.js';
import { opensCheck, type StoreSettings } from '../settings.js';

/** The store key, and the key generation it belongs to. */
export class Keyring {
  #key: Buffer | undefined;
  /** The box of the current key: one per key, not one per cached PKCS#12 read. */
  #box: SealingBox | undefined;
  /** The key generation of the settings this instance opened with (or changed to). */
  generation: number;

  constructor(
    /** Where messages say the store is. */
    private readonly where: string,
    settings: StoreSettings,
  ) {
    this.generation = settings.keyGeneration;
  }

  get unlocked(): boolean {
    return this.#key !== undefined;
  }

  /** Derives the key from `passphrase` and keeps it. @throws ERR_KEY_PASSPHRASE when it is wrong */
  async unlock(passphrase: string, settings: StoreSettings): Promise<void> {
    let key: Buffer;
    try {
      key = await deriveKey(passphrase, settings.kdf);
    } catch (cause) {
      throw new StoreIOError(this.where, 'read', 'The store has unusable key-derivation parameters', { cause });
    }
    if (!opensCheck(key, settings.check)) throw new KeyPassphraseInvalid(this.where, `The passphrase for the store at "${this.where}" is wrong`);
    this.#key = key;
    this.#box = undefined;
  }

  /** Takes a key handed over (a batch worker's), checked like a passphrase. */
  unlockWithKey(key: Uint8Array, settings: StoreSettings): void {
    const k = Buffer.from(key);
    if (!opensCheck(k, settings.check)) throw new KeyPassphraseInvalid(this.where, `The key for the store at "${this.where}" is wrong`);
    this.#key = k;
    this.#box = undefined;
  }

  /** After a passphrase change. */
  replace(key: Buffer, generation: number): void {
    this.#key = key;
    this.generation = generation;
    this.#box = undefined;
  }

  /** The key. @throws ERR_KEY_PASSPHRASE, naming what needed it */
  require(what: string): Buffer {
    if (!this.#key) throw new KeyPassphraseInvalid(this.where, `The store passphrase is needed to ${what}`);
    return this.#key;
  }

  /** A copy of the key, for a batch worker. */
  copy(): Buffer {
    return Buffer.from(this.require('hand the key to a worker'));
  }

  /** What the port calls to seal `privateKey` under the AAD it keeps it with. */
  sealer(privateKey: KeyObject): Sealer {
    const key = this.require('store keys');
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    return (aad: string) => seal(key, der, aad);
  }

  /** Opens a key the port gave. @throws ERR_KEY_PASSPHRASE without the key; ERR_STORE_IO when it does not open */
  open(key: SealedKey): KeyObject {
    const der = unseal(this.require('use private keys'), key.sealed, key.aad);
    if (!der) throw new StoreIOError(this.where, 'decrypt', `The key "${key.aad}" in ${this.where} does not decrypt: it is damaged or was moved`);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }

  /** Seals and opens bytes under the key without handing it over (the port's PKCS#12 cache). */
  box(): SealingBox {
    if (this.#box) return this.#box;
    const key = this.require('use private keys');
    const generation = this.generation;
    return (this.#box = {
      generation,
      seal: (plain, aad) => sealBytes(key, plain, aad),
      open: (sealed, aad) => unsealBytes(key, sealed, aad),
    });
  }

  /** Reseals a key from this key to `next` (a passphrase change). */
  static reseal(from: Buffer, next: Buffer, key: SealedKey, where: string): Sealed {
    const der = unseal(from, key.sealed, key.aad);
    if (!der) throw new StoreIOError(where, 'decrypt', `The key "${key.aad}" in ${where} does not decrypt: it is damaged or was moved`);
    return seal(next, der, key.aad);
  }
}
