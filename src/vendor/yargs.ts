/**
 * yargs, as the CLI loads it. Compiled, this file re-exports the package; `npm run build` then
 * replaces its output, dist/vendor/yargs.js, with yargs and its dependencies bundled into one
 * minified module (scripts/bundle-yargs.mjs), because loading the package's 45 files cost more
 * CPU than starting Node itself. Run from the sources (tsx), this file is the package as is.
 */
export { default } from 'yargs';
