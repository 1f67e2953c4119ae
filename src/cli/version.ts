import { readFileSync } from 'node:fs';

/**
 * This package's version, from its package.json (two levels up from dist/cli/ and from
 * src/cli/ alike; npm always ships package.json). yargs would guess it from the package.json
 * found above the first node_modules folder on yargs' own path, which in an installed copy is
 * the project that installed profilesmith, so `--version` printed that project's version.
 */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
