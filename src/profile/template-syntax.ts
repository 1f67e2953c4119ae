/**
 * Handlebars' parse errors, said for people: Handlebars gives "Parse error on line 24:", a
 * context line and a list of grammar tokens. This says which block is not closed, which `{{/…}}`
 * closes nothing or the wrong block, or which expression lacks its `}}`, with its line and what
 * to write.
 *
 * @module template-syntax
 */

interface Tag {
  kind: '#' | '^' | '/';
  name: string;
  line: number;
}

/** The block tags of `source` in order, comments left out. */
function blockTags(source: string): Tag[] {
  // Comments may hold braces; blank them out (newlines kept, so that lines stay right).
  const text = source.replace(/\{\{!--[\s\S]*?--\}\}|\{\{![\s\S]*?\}\}/g, (c) => c.replace(/[^\n]/g, ' '));
  const out: Tag[] = [];
  for (const m of text.matchAll(/\{\{~?\s*([#^/])\s*[>*]?\s*([^\s}~]+)/g)) {
    const line = text.slice(0, m.index).split('\n').length;
    out.push({ kind: m[1] as Tag['kind'], name: m[2] as string, line });
  }
  return out;
}

/** The first block that is never closed, or the first close tag with no block open. */
function unbalanced(source: string): { open?: Tag; stray?: Tag } {
  const stack: Tag[] = [];
  for (const tag of blockTags(source)) {
    if (tag.kind !== '/') stack.push(tag);
    else if (!stack.pop()) return { stray: tag };
  }
  return stack[0] ? { open: stack[stack.length - 1] as Tag } : {};
}

/**
 * One clause for a Handlebars compile error of `source`: the line, what is wrong and what to
 * write. Falls back to Handlebars' own first line with the offending text when it is none of these.
 */
export function describeTemplateSyntax(source: string, message: string): string {
  const first = message.split('\n')[0] ?? message;
  const mismatch = /^(\S+) doesn't match (\S+) - (\d+):\d+/.exec(first);
  if (mismatch) {
    const [, open, close, line] = mismatch;
    return `line ${line}: the {{#${open}}} block that starts there is closed by {{/${close}}}; close it with {{/${open}}}`;
  }
  const lineNo = /^Parse error on line (\d+):/.exec(first)?.[1];
  if (!lineNo) return first;
  const got = /got '([A-Z_]+)'/.exec(message)?.[1] ?? '';
  const expecting = /Expecting (.*), got/.exec(message)?.[1] ?? '';
  const { open, stray } = unbalanced(source);
  if (got === 'EOF' && expecting.includes('OPEN_ENDBLOCK') && open) {
    return `line ${open.line}: {{${open.kind}${open.name}}} is never closed; add {{/${open.name}}} where its block ends`;
  }
  if (got === 'OPEN_ENDBLOCK' && stray) return `line ${stray.line}: {{/${stray.name}}} closes no block; remove it, or open the block with {{#${stray.name}}}`;
  // Handlebars shows the text around the error, and a "----^" line pointing into it.
  const context = message.split('\n')[1] ?? '';
  const at = Math.max(0, (message.split('\n')[2] ?? '').indexOf('^'));
  const before = context.slice(Math.max(0, at - 30), at).replace(/^\.\.\./, '');
  const opened = context.lastIndexOf('{{', at);
  if (opened >= 0 && !context.slice(opened).includes('}}')) {
    return `line ${lineNo}: "${context.slice(opened, opened + 30)}" is not closed; end the expression with }}`;
  }
  return `line ${lineNo}: unexpected "${context.slice(at, at + 10)}" after "${before}"; check the {{…}} tags on that line`;
}
