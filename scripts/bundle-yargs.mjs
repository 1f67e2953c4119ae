#!/usr/bin/env node
/**
 * Part of npm run build, after tsc: dist/vendor/yargs.js becomes yargs and its dependencies
 * bundled into one minified ES module (issue 29: the CLI's start-up). Importing the package
 * loads some 45 files, which cost about 85 ms of CPU here against 65 ms for starting Node
 * (`node -e 0`); the one file costs about 40 ms. Only yargs is bundled: the CLI's own modules
 * stay as tsc wrote them (they find templates/, worker scripts and package.json relative to
 * their own URL), and load one command at a time (src/cli/commands/index.ts).
 *
 * yargs finds its messages' translations relative to its platform shim's URL
 * (lib/platform-shims/esm.mjs, then ../../../locales): the bundle gets that URL as if the shim
 * were at dist/vendor/yargs/lib/platform-shims/esm.mjs, and the locales are copied to
 * dist/vendor/yargs/locales, so a German terminal still reads "Kommandos:". The licences of
 * what is bundled go beside it, in dist/vendor/yargs.LICENSES.txt.
 *
 * esbuild is a devDependency: the published package runs the bundle and needs neither it nor
 * yargs at run time.
 */
import { build } from 'esbuild';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'dist', 'vendor');
const shim = 'yargs/lib/platform-shims/esm.mjs';

/**
 * string-width, as yargs and cliui call it to lay out --help: for a line of printable ASCII it
 * answers the line's length without its per-character work (a grapheme segmenter, a fresh
 * emoji RegExp, an East Asian width lookup per character): that work was a third of --help's
 * CPU time beyond starting Node. Every other string goes to the package itself. The shortcut
 * is checked against each bundled string-width below, character by character, at every build.
 */
const widths = new Set();
const lazied = new Set();
const asciiWidth = {
  name: 'ascii-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData === 'real') return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'real' });
      if (real.errors.length) return { errors: real.errors };
      widths.add(real.path);
      return { path: real.path, namespace: 'ascii-string-width' };
    });
    // What each string-width makes when it loads, made on first use instead, so that --help
    // (all ASCII, see above) never makes them: the first Intl.Segmenter of a process costs about
    // 10 ms (ICU's break rules), and string-width 8's /^\p{RGI_Emoji}$/v about 15 ms (the set
    // of every emoji sequence), more than half of what loading the whole bundle cost. Each is
    // only ever called as .segment(), .test() or by String#search, which the stand-in forwards.
    b.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/, namespace: 'file' }, async (args) => {
      let source = await readFile(args.path, 'utf8');
      const statement = /^const (segmenter|rgiEmojiRegex|visibleCharacterRegex|defaultIgnorableCodePointRegex) = (new Intl\.Segmenter\(\)|\/.*\/[uv]);$/gm;
      const found = [];
      source = source.replace(statement, (_, name, value) => {
        found.push(name);
        lazied.add(name);
        return `const ${name} = madeOnFirstUse(() => ${value});`;
      });
      if (!found.includes('segmenter')) throw new Error(`bundle-yargs: ${args.path} no longer makes its segmenter as the plugin expects; look again at the ascii-string-width plugin`);
      const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, ''); // the comments mention them too
      for (const name of found) {
        const uses = code.match(new RegExp(`\\b${name}\\b(?!\\.(segment|test)\\()`, 'g')) ?? [];
        const searches = code.match(new RegExp(`\\.search\\(${name}\\)`, 'g')) ?? [];
        if (uses.length - 1 !== searches.length) throw new Error(`bundle-yargs: ${args.path} uses ${name} other than by .segment(), .test() or .search(); look again at the ascii-string-width plugin`);
      }
      return {
        loader: 'js',
        contents: `${source}
function madeOnFirstUse(make) {
  let made;
  const get = () => (made ??= make());
  return { segment: (text) => get().segment(text), test: (text) => get().test(text), [Symbol.search]: (text) => get()[Symbol.search](text) };
}
`,
      };
    });
    b.onLoad({ filter: /.*/, namespace: 'ascii-string-width' }, (args) => ({
      resolveDir: dirname(args.path),
      loader: 'js',
      contents: `import stringWidth from ${JSON.stringify(args.path)};
const PRINTABLE_ASCII = /^[\\x20-\\x7e]*$/;
export default function asciiStringWidth(string, options) {
  return typeof string === 'string' && PRINTABLE_ASCII.test(string) ? string.length : stringWidth(string, options);
}
`,
    }));
  },
};

/**
 * yargs renders the whole help text after every command it runs (usage.cacheHelpMessage), for
 * getHelp()/showHelp() called later and for an async handler's failure without a parse
 * callback. The CLI calls neither and always passes a parse callback, so the text was never
 * read: rendering it was 5-10 ms of every command's CPU. Here it is not rendered; getHelp() and
 * showHelp() then render the help when asked, as they do before a command has run.
 */
let helpCacheSkipped = 0;
const noHelpCache = {
  name: 'no-help-cache',
  setup(b) {
    b.onLoad({ filter: /[\\/]yargs[\\/]build[\\/]lib[\\/]usage\.js$/, namespace: 'file' }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const statement = 'cachedHelpMessage = this.help();';
      if (source.split(statement).length !== 2) throw new Error(`bundle-yargs: ${args.path} no longer caches its help as the no-help-cache plugin expects; look again at it`);
      helpCacheSkipped++;
      return { loader: 'js', contents: source.replace(statement, '/* not rendered: see scripts/bundle-yargs.mjs */') };
    });
  },
};

const result = await build({
  stdin: { contents: "export { default } from 'yargs';", resolveDir: ROOT, loader: 'js', sourcefile: 'yargs-entry.js' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: process.env.BUNDLE_YARGS_READABLE !== '1', // BUNDLE_YARGS_READABLE=1: unminified, for a profile that names functions
  legalComments: 'none', // the licences are in yargs.LICENSES.txt, whole
  outfile: join(OUT, 'yargs.js'),
  allowOverwrite: true, // tsc wrote a re-export of the package there
  metafile: true,
  logLevel: 'warning',
  plugins: [asciiWidth, noHelpCache],
  // Every import.meta.url in the bundle (the shim's, and yargs-parser's createRequire base)
  // reads as the shim's URL would in an installed yargs next to the bundle.
  define: { 'import.meta.url': '__yargsShimUrl' },
  banner: { js: `const __yargsShimUrl = new URL('./${shim}', import.meta.url).href;` },
});

// The shortcut's premise: string-width gives every printable ASCII character width 1 (a line
// of them, its length), with and without its options.
for (const name of ['segmenter', 'rgiEmojiRegex', 'defaultIgnorableCodePointRegex']) {
  if (!lazied.has(name)) throw new Error(`bundle-yargs: no bundled string-width makes ${name} any more; look again at the ascii-string-width plugin`);
}
if (helpCacheSkipped !== 1) throw new Error(`bundle-yargs: the no-help-cache plugin met yargs' usage.js ${helpCacheSkipped} times, not once`);
if (widths.size === 0) throw new Error('bundle-yargs: no string-width was bundled; is the ascii-string-width plugin still needed?');
for (const path of widths) {
  const { default: stringWidth } = await import(pathToFileURL(path).href);
  const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));
  for (const options of [undefined, { ambiguousIsNarrow: false }, { countAnsiEscapeCodes: true }]) {
    const wrong = [...printable, printable.join(''), ''].filter((c) => stringWidth(c, options) !== c.length);
    if (wrong.length) throw new Error(`bundle-yargs: ${path} gives ${JSON.stringify(wrong)} a width other than their length`);
  }
}

rmSync(join(OUT, 'yargs'), { recursive: true, force: true });
cpSync(join(ROOT, 'node_modules', 'yargs', 'locales'), join(OUT, 'yargs', 'locales'), { recursive: true });

// One licence per bundled package, by the package directory of each input file.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//.exec(input);
  if (!m || input.startsWith('ascii-string-width:') || packages.has(m[1])) continue;
  const dir = resolve(ROOT, m[1]);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (!file) throw new Error(`${m[2]}: no licence file to ship with the bundle`);
  packages.set(m[1], { title: `${pkg.name}@${pkg.version} (${pkg.license})`, text: readFileSync(join(dir, file), 'utf8').trim() });
}
// The same version nested twice (string-width under cliui and under wrap-ansi) is listed once.
const sorted = [...new Map([...packages.values()].map((p) => [p.title, p])).values()].sort((a, b) => a.title.localeCompare(b.title));
writeFileSync(
  join(OUT, 'yargs.LICENSES.txt'),
  `dist/vendor/yargs.js bundles these packages (scripts/bundle-yargs.mjs); their licences follow.\n\n${sorted.map((p) => `- ${p.title}`).join('\n')}\n\n${sorted.map((p) => `${'='.repeat(78)}\n${p.title}\n\n${p.text}\n`).join('\n')}`,
);
if (!existsSync(join(OUT, 'yargs', 'locales', 'en.json')) || !existsSync(dirname(join(OUT, 'yargs.js')))) throw new Error('bundle-yargs: the locales were not copied');

// The bundle against the package, on a help that takes every path of string-width and cliui:
// ASCII, accents, CJK, full-width forms, emoji sequences and a flag, wrapped. Any difference in
// layout (the shortcut, the stand-ins above, the bundling) fails the build.
const render = async (url) => {
  const { default: yargs } = await import(url);
  let out = '';
  await yargs([])
    .scriptName('probe')
    .command('é <ü>', 'emoji 👩‍👩‍👧 日本語 wide, and a long ASCII description that wraps over more than one line of the help', {}, () => {})
    .option('ñ', { describe: 'ｆｕｌｌ　ｗｉｄｔｈ 🇩🇪 flag 1️⃣ keycap', type: 'string' })
    .option('plain', { describe: 'plain ASCII', choices: ['a', 'b'] })
    .wrap(60)
    .exitProcess(false)
    .parseAsync(['--help'], {}, (_err, _argv, output) => {
      out = output;
    });
  return out;
};
const [fromPackage, fromBundle] = [await render('yargs'), await render(pathToFileURL(join(OUT, 'yargs.js')).href)];
if (!fromPackage.includes('日本語') || fromPackage !== fromBundle) {
  throw new Error(`bundle-yargs: the bundle lays out help differently from the yargs package:\n${fromPackage}\n---\n${fromBundle}`);
}
