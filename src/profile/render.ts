/**
 * The isolated Handlebars environment: `Handlebars.create()`, strict mode, and a few
 * helpers named after plist types. The global Handlebars is never touched, so our helpers
 * cannot leak into an embedder's templates, nor theirs into ours.
 */
import Handlebars from 'handlebars';
import { TemplateDataError, TemplateSyntaxError } from '../errors.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_DIR, type Template } from './template.js';
import { describeTemplateSyntax } from './template-syntax.js';

type HelperOptions = { loc?: { start?: { line: number; column: number } } };

const where = (o: HelperOptions) => (o?.loc?.start ? ` at line ${o.loc.start.line}` : '');

/** `YYYY-MM-DDThh:mm:ssZ`: iOS rejects fractional seconds. */
export function plistDate(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The shared pieces (profile head, CA payloads, identities, S/MIME keys), read once. */
let partials: Record<string, string> | undefined;
function builtinPartials(): Record<string, string> {
  if (!partials) {
    const dir = join(BUILTIN_DIR, 'partials');
    partials = Object.fromEntries(
      readdirSync(dir)
        .filter((f) => f.endsWith('.hbs'))
        .map((f) => [f.slice(0, -4), readFileSync(join(dir, f), 'utf8')]),
    );
  }
  return partials;
}

function environment(templateName: string): typeof Handlebars {
  const hb = Handlebars.create();
  for (const [name, source] of Object.entries(builtinPartials())) hb.registerPartial(name, hb.compile(source, { strict: true, preventIndent: true }));
  hb.registerHelper('bool', (value: unknown, options: HelperOptions) => {
    if (typeof value !== 'boolean') {
      throw new TemplateDataError(templateName, 'bool', `helper needs true or false${where(options)}, got ${JSON.stringify(value) ?? 'undefined'}`);
    }
    return new hb.SafeString(value ? '<true/>' : '<false/>');
  });
  hb.registerHelper('data', (value: unknown, options: HelperOptions) => {
    if (!(value instanceof Uint8Array)) {
      throw new TemplateDataError(templateName, 'data', `helper needs bytes${where(options)}`);
    }
    return new hb.SafeString(Buffer.from(value).toString('base64'));
  });
  hb.registerHelper('plistDate', (value: unknown, options: HelperOptions) => {
    const d = value instanceof Date ? value : new Date(String(value));
    if (Number.isNaN(d.getTime())) throw new TemplateDataError(templateName, 'plistDate', `helper needs a date${where(options)}`);
    return new hb.SafeString(plistDate(d));
  });
  return hb;
}

const compiled = new WeakMap<Template, Handlebars.TemplateDelegate>();

/**
 * Renders a template with `context`. Every `{{value}}` is XML-escaped.
 * @throws ERR_TEMPLATE_SYNTAX, ERR_TEMPLATE_DATA (a missing variable, named)
 */
export function renderTemplate(template: Template, context: Record<string, unknown>): string {
  let fn = compiled.get(template);
  if (!fn) {
    const hb = environment(template.name);
    try {
      hb.precompile(template.source, { strict: true }); // surfaces syntax errors now, not at first render
    } catch (err) {
      throw new TemplateSyntaxError(template.name, describeTemplateSyntax(template.source, (err as Error).message), { cause: err });
    }
    fn = hb.compile(template.source, { strict: true, preventIndent: true });
    compiled.set(template, fn);
  }
  try {
    return fn(context, { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false });
  } catch (err) {
    if (err instanceof TemplateDataError) throw err;
    const m = /"([^"]+)" not defined in.* - (\d+):(\d+)/.exec((err as Error).message);
    if (m) {
      // Handlebars names only the last segment; read the whole path from the source at the position it gives.
      const lineText = template.source.split('\n')[Number(m[2]) - 1] ?? '';
      const found = /^[\w.@/-]+/.exec(lineText.slice(Number(m[3])))?.[0];
      // The position may be inside a partial; trust it only when it names the same variable.
      const expr = found && found.endsWith(m[1] as string) ? found : (m[1] as string);
      throw new TemplateDataError(template.name, expr, `is not defined (line ${m[2]})`);
    }
    throw new TemplateSyntaxError(template.name, (err as Error).message.split('\n')[0] ?? 'render error', { cause: err });
  }
}
