/**
 * One-time links over the port: the rules of LinkLedger (tokens kept as hashes, constant-time
 * lookup, TTL, uses, pruning) with each change one port transaction, so a link is used exactly
 * once whichever process or node receives it. A port with a better way to spend a use (one
 * conditional UPDATE) offers its own book instead (`StoragePort.linkStore`).
 *
 * @module ca-links
 */
import { LinkLedger, type LinkRecord, type LinkStore } from '../../server/links.js';
import type { LinkBookName, StoragePort } from '../port/port.js';

/** A book of one-time links kept by a port. */
export class PortLinks extends LinkLedger {
  constructor(
    private readonly port: StoragePort,
    private readonly book: LinkBookName,
    now: () => Date,
  ) {
    super(now);
  }

  list(): Promise<LinkRecord[]> {
    return this.port.links(this.book);
  }

  protected transact<T>(fn: (links: LinkRecord[]) => T): Promise<T> {
    return this.port.transaction(async (tx) => {
      const before = await tx.links(this.book);
      const was = new Map(before.map((l) => [l.id, JSON.stringify(l)]));
      const links = structuredClone(before);
      const out = fn(links);
      const kept = this.prune(links);
      const ids = new Set(kept.map((l) => l.id));
      const changed = kept.filter((l) => was.get(l.id) !== JSON.stringify(l));
      const removed = before.filter((l) => !ids.has(l.id)).map((l) => l.id);
      if (changed.length || removed.length) await tx.putLinks(this.book, changed, removed);
      return out;
    });
  }
}

/** The book a CA uses: the port's own when it has one, else links over its transactions. */
export function linkBook(port: StoragePort, book: LinkBookName, now: () => Date): LinkStore {
  return port.linkStore?.(book, now) ?? new PortLinks(port, book, now);
}
