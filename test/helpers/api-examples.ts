import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './tools.js';

/** The code of every `Example` section of an API page (typedoc writes each @example as one). */
export function apiExamples(): { page: string; code: string }[] {
  const out: { page: string; code: string }[] = [];
  const walk = (dir: string, base: string): void => {
    for (const f of readdirSync(dir)) {
      if (statSync(join(dir, f)).isDirectory()) walk(join(dir, f), `${base}${f}/`);
      else if (f.endsWith('.md')) {
        const text = readFileSync(join(dir, f), 'utf8');
        for (const m of text.matchAll(/^#+ Example\n+```ts\n([\s\S]*?)\n```/gm)) out.push({ page: `${base}${f}`, code: m[1]! });
      }
    }
  };
  walk(join(ROOT, 'docs', 'api'), '');
  return out;
}

/**
 * What an API example may use without declaring it: every value export of the package (as if
 * imported), Node's usual modules, and the few values an example stands for (a store, a
 * profile's bytes, a PEM). An example that imports or declares a name uses its own.
 */
export function exampleContext(values: string[], errorValues: string[]): string {
  return `import type * as P from 'profilesmith';
import type * as E from 'profilesmith/errors';
declare global {
${values.map((v) => `  const ${v}: typeof import('profilesmith').${v};`).join('\n')}
${errorValues.filter((v) => !values.includes(v)).map((v) => `  const ${v}: typeof import('profilesmith/errors').${v};`).join('\n')}
  const readFileSync: typeof import('node:fs').readFileSync;
  const writeFileSync: typeof import('node:fs').writeFileSync;
  const readFile: typeof import('node:fs/promises').readFile;
  const writeFile: typeof import('node:fs/promises').writeFile;
  const http: typeof import('node:http');
  /** A store with the whole lifecycle (openStore, createMemoryStore). */
  const store: P.FileStore;
  const passphrase: string;
  const password: string;
  /** A signed profile, a CSR, a certificate: DER bytes. */
  const der: Buffer;
  const csrDer: Buffer;
  const certificateDer: Buffer;
  const upload: Buffer;
  /** PEM text. */
  const rootPem: string;
  const pemKey: string;
  const pemCert: string;
  const pemIntermediate: string;
  const signerPem: string;
  const intermediatePem: string;
  const certificate: string;
  /** A profile's XML. */
  const xml: string;
  const key: import('node:crypto').KeyObject;
  const privateKey: import('node:crypto').KeyObject;
  const issuingCa: P.CertificateAuthority['intermediate'];
  const record: P.CertificateRecord;
  const records: P.CertificateRecord[];
  const err: unknown;
  /** A web framework's app (Express-like). */
  const app: { all(path: string, handler: (req: any, res: any) => unknown): void };
}
export {};
`;
}
