import { UsageError } from './errors.js';

/** Everything the CLI touches of the outside world, so tests run it in process. */
export interface Io {
  stdout: { write(chunk: string | Uint8Array): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  env: Record<string, string | undefined>;
  cwd: string;
  /** Registers what to do on the first SIGTERM/SIGINT (long-running commands: serve, batch); a second one ends the process. */
  onTerminate?: (fn: (signal: 'SIGINT' | 'SIGTERM') => void) => void;
}

/** Reads a secret from the terminal without echo. Only on a TTY; otherwise a usage error naming `alternative`. */
export async function readSecret(io: Io, prompt: string, alternative: string): Promise<string> {
  const { stdin } = io;
  if (!stdin.isTTY || !stdin.setRawMode) throw new UsageError(`A passphrase is needed and there is no terminal to ask: ${alternative}`);
  io.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: Buffer | string) => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            io.stderr.write('\n');
            resolve(value);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            io.stderr.write('\n');
            reject(new UsageError('Cancelled'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}
