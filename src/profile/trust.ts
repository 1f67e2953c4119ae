/**
 * Which trust a signed profile needs on the iPhone to show as "Verified" (see cms/trust.ts):
 * a signer chaining to a root the device already trusts needs nothing; one whose root comes
 * in the profile itself needs that root installed first (a trust profile).
 *
 * @module profile-trust
 */
import { X509Certificate } from 'node:crypto';
import { issuerAndSerial } from '../cms/certificate.js';
import { signerTrust, type SignerTrust } from '../cms/trust.js';
import { parseSignedData } from '../cms/verify.js';
import { isPlistDict } from './plist-xml.js';
import { parseProfile } from './parse.js';

/**
 * The trust a signed profile's signer needs. `deviceRoots` are roots the devices are known to
 * trust already (besides the public ones), such as a `verify --ca` root the profile does not carry.
 * Undefined for an unsigned profile or one without its signer certificate.
 */
export function profileTrust(bytes: Uint8Array, deviceRoots: readonly Uint8Array[] = []): SignerTrust | undefined {
  let parsed;
  try {
    parsed = parseSignedData(bytes);
  } catch {
    return undefined;
  }
  const sid = parsed.signerFields[1];
  const signer = parsed.certificates.find((c) => {
    try {
      return sid !== undefined && issuerAndSerial(c.raw).equals(sid.raw);
    } catch {
      return false;
    }
  });
  if (!signer) return undefined;
  // The roots the profile ships in its own payloads cannot vouch for the profile they come in.
  const shipped = new Set<string>();
  const shippedSubjects = new Set<string>();
  try {
    const plist = parseProfile(parsed.content).plist;
    const payloads = isPlistDict(plist) && Array.isArray(plist.PayloadContent) ? plist.PayloadContent : [];
    for (const p of payloads) {
      if (isPlistDict(p) && p.PayloadType === 'com.apple.security.root' && p.PayloadContent instanceof Uint8Array) {
        try {
          const x = new X509Certificate(p.PayloadContent);
          shipped.add(x.fingerprint256);
          shippedSubjects.add(x.subject.replace(/\n/g, ', '));
        } catch {
          // not a certificate: lint says so
        }
      }
    }
  } catch {
    // content that is not a plist: verify says so
  }
  const trusted = deviceRoots.filter((r) => {
    try {
      return !shipped.has(new X509Certificate(r).fingerprint256);
    } catch {
      return false;
    }
  });
  const t = signerTrust(signer.raw, parsed.certificates.filter((c) => c !== signer).map((c) => c.raw), trusted);
  return t.kind === 'private' && t.root !== undefined && shippedSubjects.has(t.root) ? { ...t, rootInProfile: true } : t;
}
