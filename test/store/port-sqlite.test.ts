/**
 * The SQLite port of examples/bring-your-own-store: the port contract, on one port and on two
 * ports over the same file (as two processes would open it), and what is its own: the file's
 * tables reopen, reads outside a transaction see committed state, and another process's
 * transactions are excluded (BEGIN IMMEDIATE), not only this process's (a promise chain).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SqlitePort } from '../../examples/bring-your-own-store/sqlite-store.js';
import { portContract } from '../helpers/port-contract.js';
import { tmp } from '../helpers/tools.js';

const opened = (t: Parameters<typeof tmp>[0], path: string) => {
  const port = new SqlitePort(path);
  t.teardown(() => port.close());
  return port;
};

portContract('sqlite', async (t) => {
  const path = join(tmp(t), 'certificates.sqlite');
  return { port: opened(t, path) };
});
portContract('sqlite, two ports on one file', async (t) => {
  const path = join(tmp(t), 'certificates.sqlite');
  return { port: opened(t, path), reopen: async () => new SqlitePort(path) };
});

test('sqlite port: what was committed is there when the file is opened again; reads outside a transaction see committed state only', async (t) => {
  const path = join(tmp(t), 'certificates.sqlite');
  const port = opened(t, path);
  await port.transaction((tx) => tx.putCrlState('issuing', { number: 1 }));
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const pending = port.transaction(async (tx) => {
    await tx.putCrlState('issuing', { number: 2 });
    await held;
  });
  await new Promise((resolve) => setImmediate(resolve));
  t.is((await port.crlState('issuing'))?.number, 1, 'the open transaction is not seen');
  release();
  await pending;
  t.is((await port.crlState('issuing'))?.number, 2);
  await port.close();
  const again = opened(t, path);
  t.is((await again.crlState('issuing'))?.number, 2);
});

test('sqlite port: two processes × 20 read-modify-write transactions on one file lose no update', async (t) => {
  const dir = tmp(t);
  const path = join(dir, 'certificates.sqlite');
  const port = opened(t, path);
  const example = resolve(import.meta.dirname, '../../examples/bring-your-own-store/sqlite-store.ts');
  // The same 20 transactions here and in the child: read, yield, write the number plus one.
  const bump = (p: SqlitePort) =>
    p.transaction(async (tx) => {
      const s = await tx.crlState('issuing');
      await new Promise((r) => setTimeout(r, 2));
      await tx.putCrlState('issuing', { number: (s?.number ?? 0) + 1 });
    });
  const script = join(dir, 'bump.mts');
  writeFileSync(script, `import { SqlitePort } from ${JSON.stringify(example)};
const port = new SqlitePort(${JSON.stringify(path)});
console.log('ready');
for (let i = 0; i < 20; i++) {
  await port.transaction(async (tx) => {
    const s = await tx.crlState('issuing');
    await new Promise((r) => setTimeout(r, 2));
    await tx.putCrlState('issuing', { number: (s?.number ?? 0) + 1 });
  });
}
await port.close();
`);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  // Both begin together: the child once it has its port open.
  await Promise.race([new Promise((r) => child.stdout.once('data', r)), exited]);
  for (let i = 0; i < 20; i++) await bump(port);
  t.is(await exited, 0, stderr);
  t.is((await port.crlState('issuing'))?.number, 40);
});
