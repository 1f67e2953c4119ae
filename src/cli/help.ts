/**
 * `--help` text after yargs: its Examples section has each command on one line, so that it can
 * be pasted. yargs lays examples out in two columns and wraps the command column, which breaks a
 * command inside its quoted arguments ("Example Corp" split over two lines).
 *
 * @module help
 */

/** The help text with every example command on one line and its description on the next. */
export function unwrapExamples(help: string): string {
  const lines = help.split('\n');
  const start = lines.indexOf('Examples:');
  if (start < 0) return help;
  let end = start + 1;
  while (end < lines.length && lines[end]!.trim() !== '') end++;
  const rows = lines.slice(start + 1, end);
  const first = /^(\s+\S(?:.*?\S)?)(\s{2,})(\S.*)$/.exec(rows[0] ?? '');
  // Where the description column starts (none when the first example has no description).
  const column = first ? first[1]!.length + first[2]!.length : Infinity;
  const program = (rows[0] ?? '').trim().split(/\s+/)[0] ?? '';
  const examples: { command: string[]; description: string[] }[] = [];
  for (const row of rows) {
    const left = row.slice(0, column).trim();
    const right = row.slice(column).trim();
    if (left.startsWith(`${program} `) || left === program || !examples.length) examples.push({ command: [], description: [] });
    const current = examples[examples.length - 1]!;
    if (left) current.command.push(left);
    if (right) current.description.push(right);
  }
  const out = examples.flatMap((e) => [`  ${e.command.join(' ')}`, ...(e.description.length ? [`      ${e.description.join(' ')}`] : [])]);
  return [...lines.slice(0, start + 1), ...out, ...lines.slice(end)].join('\n');
}
