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
import { certificatesFrom } from '../certs/pem.js';
import { isPlistDict } from './plist-xml.js';
import { parseProfile } from './parse.js';
import { ANCHOR_PAYLOADS } from './rules-references.js';

/**
 * The trust a signed profile's signer needs. `deviceRoots` are roots the devices are known to
 * trust already (besides the public ones), such as a `verify --ca` root the profile does not carry;
 * a certificate the profile carries (a root, pkcs1 or PEM payload) never counts, even when given.
 * A signer that is not valid at `now` gets `invalid`: nothing on the device makes it Verified.
 * Undefined for an unsigned profile or one without its signer certificate.
 */
export function profileTrust(bytes: Uint8Array, deviceRoots: readonly Uint8Array[] = [], now: Date = new Date()): SignerTrust | undefined {
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
      if (!isPlistDict(p) || typeof p.PayloadType !== 'string' || !ANCHOR_PAYLOADS.has(p.PayloadType) || !(p.PayloadContent instanceof Uint8Array)) continue;
      // DER is the documented form; PEM is installed too (MicroMDM writes it), so read both.
      const text = Buffer.from(p.PayloadContent.subarray(0, 64)).toString('latin1').trimStart();
      const ders = text.startsWith('-----BEGIN') ? certificatesFrom(Buffer.from(p.PayloadContent).toString('latin1')) : [p.PayloadContent];
      for (const der of ders) {
        try {
          const x = new X509Certificate(der);
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
  const withRoot = t.kind === 'private' && t.root !== undefined && shippedSubjects.has(t.root) ? { ...t, rootInProfile: true } : t;
  const subject = signer.subject.replace(/\n/g, ', ');
  if (now > new Date(signer.validTo)) return { ...withRoot, invalid: `the signer certificate "${subject}" expired on ${new Date(signer.validTo).toISOString()}` };
  if (now < new Date(signer.validFrom)) return { ...withRoot, invalid: `the signer certificate "${subject}" is not valid before ${new Date(signer.validFrom).toISOString()}` };
  return withRoot;
}
