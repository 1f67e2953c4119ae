/**
 * A real PKCS#11 token for tests: Debian's SoftHSM2, with its tokens in a temporary directory.
 *
 * SoftHSM reads SOFTHSM2_CONF with the C library's getenv. ava runs each test file in its own
 * process (workerThreads: false), so setting process.env here, before the module is loaded,
 * reaches it; every test file gets its own token directory. Tokens are made with softhsm2-util before the test
 * file loads the module, and keys are imported from encrypted PKCS#8 (--file-pin), so no key is
 * ever written unencrypted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const MODULE_PATHS = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so'];

export interface SoftHsm {
  module: string;
  conf: string;
  env: NodeJS.ProcessEnv;
  /** Creates a token and returns its label. */
  initToken(label: string, pin: string): void;
  /** Imports a private key into a token (encrypted on the way). */
  importKey(token: string, pin: string, key: KeyObject, label: string, idHex: string): void;
}

/** SoftHSM ready for use, or a reason it is not. */
export function softhsm(): SoftHsm | { missing: string } {
  const module = MODULE_PATHS.find((p) => existsSync(p));
  if (!module) return { missing: 'SoftHSM2 is not installed (Debian package softhsm2)' };
  if (spawnSync('softhsm2-util', ['--version']).status !== 0) return { missing: 'softhsm2-util is not on PATH' };
  try {
    require_pkcs11js();
  } catch {
    return { missing: 'the optional package pkcs11js is not installed (it builds with node-gyp)' };
  }
  const conf = (process.env.SOFTHSM2_CONF ??= join(mkdtempSync(join(tmpdir(), 'profilesmith-softhsm-')), 'softhsm2.conf'));
  const tokens = join(dirname(conf), 'tokens');
  if (!existsSync(conf)) {
    mkdirSync(tokens, { recursive: true, mode: 0o700 });
    writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  }
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  const util = (args: string[]) => execFileSync('softhsm2-util', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return {
    module,
    conf,
    env,
    initToken: (label, pin) => {
      util(['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', `so-${pin}`]);
    },
    importKey: (token, pin, key, label, idHex) => {
      const filePin = randomBytes(12).toString('hex');
      const path = join(dirname(conf), `import-${randomBytes(6).toString('hex')}.pem`);
      writeFileSync(path, key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: filePin }), { mode: 0o600 });
      try {
        util(['--import', path, '--file-pin', filePin, '--token', token, '--label', label, '--id', idHex, '--pin', pin]);
      } finally {
        rmSync(path, { force: true });
      }
    },
  };
}

function require_pkcs11js(): void {
  // Resolved, not loaded: loading is the library's business.
  import.meta.resolve('pkcs11js');
}
