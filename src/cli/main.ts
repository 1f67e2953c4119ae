#!/usr/bin/env node
// The only file that touches the process: everything else gets an Io.
import { run } from './run.js';

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
