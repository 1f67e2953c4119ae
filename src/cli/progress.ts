import type { BatchFailure, BatchProgress } from '../batch/run.js';
import type { Io } from './io.js';
import { printable } from '../certs/email.js';
import { errorLine } from './output.js';

/**
 * Progress on stderr: a redrawn bar on a TTY (done/total, rate, ETA), otherwise a plain
 * line every few seconds. Nothing goes to stdout.
 */
export function progressReporter(io: Io, label: string): { update(p: BatchProgress): void; done(): void } {
  const tty = !!io.stderr.isTTY;
  let last = 0;
  let drawn = false;
  const line = (p: BatchProgress) => {
    const rate = p.done / Math.max(p.elapsedMs / 1000, 0.001);
    const eta = rate > 0 ? Math.max(0, (p.total - p.done) / rate) : 0;
    // An estimate from the first rows of a run (start-up included) is noise: wait for 2 s and 5%.
    const settled = p.elapsedMs >= 2000 && p.done >= p.total * 0.05 && p.done < p.total;
    const pct = p.total ? Math.floor((p.done / p.total) * 100) : 100;
    const bar = tty ? `[${'#'.repeat(Math.floor(pct / 5)).padEnd(20, '.')}] ` : '';
    return `${label}: ${bar}${p.done}/${p.total} (${pct}%), ${rate.toFixed(1)}/s${settled ? `, ETA ${Math.ceil(eta)}s` : ''}${p.failed ? `, ${p.failed} failed` : ''}`;
  };
  return {
    update(p) {
      const now = Date.now();
      if (tty) {
        if (now - last < 100 && p.done !== p.total) return;
        io.stderr.write(`\r${line(p)}\u001b[K`);
        drawn = true;
      } else {
        // A plain line every 5 s of the run (none for a run shorter than that), and the last one.
        if ((now - last < 5_000 || p.elapsedMs < 5_000) && p.done !== p.total) return;
        io.stderr.write(line(p) + '\n');
      }
      last = now;
    },
    done() {
      if (drawn) io.stderr.write('\n');
    },
  };
}

/**
 * The callbacks a batch command hands the library: progress (unless `--json`), and each
 * failed row as an error with its line number (the run exits 1). Call `finish` when the run returns.
 */
export function batchReporter(io: Io, label: string, quiet: boolean) {
  const progress = quiet ? undefined : progressReporter(io, label);
  return {
    callbacks: {
      ...(progress ? { onProgress: progress.update } : {}),
      onFailure: (f: BatchFailure) => {
        progress?.done();
        errorLine(io, `error: line ${f.line}: ${f.email ? printable(f.email) : '(no email)'}: ${f.message}`);
      },
    },
    finish: () => progress?.done(),
  };
}
