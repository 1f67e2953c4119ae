/** Listening sockets for `serve` and `pki serve`: HOST:PORT, and one clear line for each way binding fails. */
import { createServer, type Server } from 'node:net';
import { InputInvalid } from '../errors.js';
import { UsageError } from './errors.js';

/** HOST:PORT, [IPv6]:PORT or :PORT (all addresses). */
export function parseListen(text: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen takes HOST:PORT (127.0.0.1:8080, [::1]:8080, :8080), got "${text}"`);
  const host = m[1] ?? m[2];
  return { host: host || undefined, port };
}

/** Starts listening; a port in use, a missing permission or an unknown address is one line, exit 1. */
export function listen(server: Server, host: string | undefined, port: number): Promise<{ address: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${host ?? '*'}:${port}`;
      if (err.code === 'EADDRINUSE') reject(new InputInvalid('listen', `Cannot listen on ${where}: the port is in use; stop what listens there, or pick another port with --listen HOST:PORT`));
      else if (err.code === 'EACCES') reject(new InputInvalid('listen', `Cannot listen on ${where}: permission denied (ports below 1024 need privileges); pick a port of 1024 or more with --listen HOST:PORT`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new InputInvalid('listen', `Cannot listen on ${where}: that address is not on this machine; give one of its addresses with --listen HOST:PORT`));
      else if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') reject(new InputInvalid('listen', `Cannot listen on ${where}: the name "${host}" does not resolve here; give an address of this machine with --listen HOST:PORT`));
      else reject(new InputInvalid('listen', `Cannot listen on ${where}: ${err.message}`));
    });
    server.listen(port, host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? { address: a.address, port: a.port } : { address: host ?? '0.0.0.0', port });
    });
  });
}

/**
 * Binds HOST:PORT for a moment and lets it go: a port in use (or any other reason `listen` would
 * give) is found before a command writes to the store. Port 0 binds any free port, which
 * still finds an address that is not this machine's or a name that does not resolve.
 */
export async function probeListen(host: string | undefined, port: number): Promise<void> {
  const probe = createServer();
  await listen(probe, host, port);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}
