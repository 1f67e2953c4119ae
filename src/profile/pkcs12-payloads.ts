/**
 * The PKCS#12 payloads of a profile, opened before the (synchronous) rules look at them:
 * asynchronously, so a server that lints or inspects uploads keeps answering, and under one
 * {@link KdfBudget} for the whole profile, so many payloads cannot multiply the work.
 *
 * @module pkcs12-payloads
 */
import { KdfBudget, readPkcs12, readPkcs12Async, type Pkcs12Contents } from '../certs/pkcs12-read.js';
import type { PlistValue } from './plist-xml.js';

/** Opens one PKCS#12 payload's content with its Password, or throws ERR_INPUT_INVALID (a wrong password, a damaged file, an overspent budget). */
export type Pkcs12Opener = (content: Uint8Array, password: string) => Pkcs12Contents;

/** The top-level payloads of a profile that carry a PKCS#12 and a Password to open it with. */
function pkcs12Payloads(profile: PlistValue): { content: Uint8Array; password: string }[] {
  const top = profile && typeof profile === 'object' && !Array.isArray(profile) && !(profile instanceof Uint8Array) && !(profile instanceof Date) ? (profile as Record<string, PlistValue>) : undefined;
  const list = Array.isArray(top?.PayloadContent) ? top.PayloadContent : [];
  const out: { content: Uint8Array; password: string }[] = [];
  for (const p of list) {
    if (!p || typeof p !== 'object' || Array.isArray(p) || p instanceof Uint8Array || p instanceof Date) continue;
    const d = p as Record<string, PlistValue>;
    if (d.PayloadType === 'com.apple.security.pkcs12' && d.PayloadContent instanceof Uint8Array && typeof d.Password === 'string') out.push({ content: d.PayloadContent, password: d.Password });
  }
  return out;
}

/**
 * Opens every PKCS#12 payload of `profile` one after another without blocking the event loop,
 * charging all of them to `budget`; the opener it returns answers from those results (a payload
 * it did not see is opened on the spot, under the same budget).
 */
export async function openPkcs12Payloads(profile: PlistValue, budget: KdfBudget = new KdfBudget()): Promise<Pkcs12Opener> {
  const opened = new Map<Uint8Array, { value: Pkcs12Contents } | { error: unknown }>();
  for (const { content, password } of pkcs12Payloads(profile)) {
    if (opened.has(content)) continue;
    try {
      opened.set(content, { value: await readPkcs12Async(content, password, { budget }) });
    } catch (error) {
      opened.set(content, { error });
    }
  }
  return (content, password) => {
    const r = opened.get(content);
    if (!r) return readPkcs12(content, password, { budget });
    if ('error' in r) throw r.error;
    return r.value;
  };
}
