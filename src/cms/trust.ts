/**
 * Which trust a profile's signer needs on the iPhone. iOS evaluates the signer's chain against
 * the roots it trusts and drops self-signed certificates that come inside the signature
 * (MCProfile evaluateTrustOfCertificateChain in iOS's ManagedConfiguration): a signer chaining to a public
 * root shows "Verified" anywhere; one chaining to a private root shows "Not Verified" until that
 * root is on the device (a trust profile installed first).
 *
 * @module trust
 */
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';

/** What a signer needs to show as "Verified". */
export interface SignerTrust {
  /** `public`: it chains to a root devices already trust; `private`: the root must be installed first. */
  kind: 'public' | 'private';
  /** The subject of the root it chains to, when known. */
  root?: string;
  /** True when the profile itself carries that root (our store's case): it cannot vouch for itself. */
  rootInProfile?: boolean;
  /** Why no trust on the device makes it Verified (a signer expired or not yet valid), when so. */
  invalid?: string;
}

let roots: X509Certificate[] | undefined;

/**
 * Follows the signer's chain (its certificate, then `chain`) to a public root (Node's bundled
 * Mozilla roots, which stand in for Apple's, and `extraRoots`: roots the devices are known to
 * trust already), or to the last certificate the chain has.
 */
export function signerTrust(certificate: Uint8Array, chain: readonly Uint8Array[] = [], extraRoots: readonly (string | Uint8Array)[] = []): SignerTrust {
  roots ??= rootCertificates.map((pem) => new X509Certificate(pem));
  const anchors = [...roots, ...extraRoots.map((r) => new X509Certificate(r))];
  const pool = chain.map((c) => new X509Certificate(c));
  let current = new X509Certificate(certificate);
  for (let depth = 0; depth < 10; depth++) {
    const anchor = anchors.find((a) => a.fingerprint256 === current.fingerprint256 || (current.checkIssued(a) && current.verify(a.publicKey)));
    if (anchor) return { kind: 'public', root: anchor.subject.replace(/\n/g, ', ') };
    const next = pool.find((c) => c.fingerprint256 !== current.fingerprint256 && current.checkIssued(c) && current.verify(c.publicKey));
    if (!next) break;
    current = next;
  }
  const selfSigned = current.checkIssued(current);
  return { kind: 'private', ...(selfSigned ? { root: current.subject.replace(/\n/g, ', ') } : { root: current.issuer.replace(/\n/g, ', ') }) };
}

/** One line for people: what the device needs for the profile to show "Verified". */
export function describeTrust(t: SignerTrust): string {
  if (t.invalid) return `nothing on the device will do: ${t.invalid}, so iOS shows it as Not Verified; sign it again with a valid signer (profilesmith sign)`;
  return t.kind === 'public'
    ? `nothing on the device: the signer chains to "${t.root}", a root devices already trust (a public one, or one given as trusted), so iOS shows it as Verified`
    : `the root "${t.root}" on the device first (${t.rootInProfile ? 'the profile carries it, but iOS does not trust a root by the profile it comes in: install the trust profile first' : 'a trust profile with it'}): until then iOS shows it as Not Verified`;
}
