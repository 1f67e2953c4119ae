/**
 * The PostgreSQL store: the CA (src/store/ca) over the PostgreSQL port, one database that any
 * number of generators, servers and batch workers share. The database's own guarantees do the
 * coordinating, not lock files: every change is one transaction holding the port's advisory
 * lock, so a serial is issued once, a CRL number is handed out once, a renewal is spent once
 * and a one-time link is used once (one conditional UPDATE), whichever node asks; CRLs and OCSP
 * answers are read from the tables when asked, so a revocation committed on one node is in the
 * next answer of every node. Private keys are sealed client-side exactly as in the file store
 * (scrypt, AES-256-GCM, the same associated data); the database only ever holds ciphertext.
 *
 * @module postgres-store
 */
import type { KeyObject } from 'node:crypto';
import { CaStore } from '../ca/ca-store.js';
import type { Sealed } from '../secret-box.js';
import type { Database } from './db.js';
import type { PostgresPort } from './port/postgres-port.js';

/**
 * The PostgreSQL store. Create it with {@link initPostgresStore} or {@link openPostgresStore}.
 * @example
 * import type { PostgresStore } from 'profilesmith'
 * const store: PostgresStore = await openStore('postgres://profilesmith@db.internal/pki', { passphrase })
 * try {
 *   await store.revokeCertificate('0a1b2c', 'keyCompromise')
 * } finally {
 *   await store.close()
 * }
 */
export class PostgresStore extends CaStore {
  /** @internal */
  declare readonly port: PostgresPort;

  /** @internal What openPostgresStore and initPostgresStore call. */
  static async make(port: PostgresPort, now: () => Date, key?: Buffer): Promise<PostgresStore> {
    const store = new PostgresStore(port, await port.settings(), now);
    if (key) store.unlockWithKey(key);
    return store;
  }

  /** @internal The database, for store check. */
  get database(): Database {
    return this.port.database;
  }

  /** @internal For store check: opens one sealed key. */
  checkSealed(sealed: Sealed, aad: string): KeyObject {
    return this.keys.open({ sealed, aad });
  }
}
