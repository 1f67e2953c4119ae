#!/usr/bin/env node
// The only file that touches the process: everything else gets an Io.
// `profilesmith --version` alone is answered here, before the parser and the commands load
// (what yargs prints for it: the version and a newline, exit code 0).

// A reader that stopped reading (`profilesmith --help | head`) is not an error: stop quietly, as
// a command killed by SIGPIPE does, instead of an unhandled EPIPE and its stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

if (process.argv.length === 3 && process.argv[2] === '--version') {
  const { packageVersion } = await import('./version.js');
  process.stdout.write(`${packageVersion()}\n`);
} else {
  const { run } = await import('./run.js');
  const code = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    onTerminate: (fn) => {
      process.once('SIGTERM', () => fn('SIGTERM'));
      process.once('SIGINT', () => fn('SIGINT'));
    },
  });
  process.exitCode = code;
}
