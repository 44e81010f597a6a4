// `mmapkit build` must start on a fresh clone, before anything is built: no module the CLI
// loads at its start may import build output (native/generated/, which the build's
// header-names step writes). 2026-12-01: tools/paths.ts imported native/index.ts, whose API
// table imports the generated header names, and `make test` on a fresh clone failed at its
// first command with ERR_MODULE_NOT_FOUND.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEADER_NAMES_MODULE } from '../../tools/builder/header-names.js';
import { REPO_ROOT } from '../../tools/paths.js';

/** The CLI's entry, which bin/mmapkit.js imports from its bundle (bin/cli-bundle.js). */
const CLI_ENTRY = path.join(REPO_ROOT, 'tools', 'cli', 'main.ts');
const GENERATED = path.dirname(HEADER_NAMES_MODULE) + path.sep;

/**
 * The relative modules `file` imports: `import ... from` and `export ... from`, not `import type`
 * (erased), nor an import whose every name is a type; and its dynamic `import('./x.js')` of a
 * relative path, as the dispatcher (tools/cli/main.ts) loads the command it runs.
 */
function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const found: string[] = [];
  const resolve = (specifier: string): string => {
    const target = path.resolve(path.dirname(file), specifier);
    const ts = target.replace(/\.js$/, '.ts');
    return existsSync(ts) || target.startsWith(GENERATED) ? ts : target;
  };
  for (const [, specifier] of source.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g)) found.push(resolve(specifier!));
  for (const match of source.matchAll(/^(?:import|export)\s+(type\s+)?(?:([^'";]*?)\s+from\s+)?['"]([^'"]+)['"]/gm)) {
    const [, typeOnly, names, specifier] = match;
    if (typeOnly !== undefined || !specifier!.startsWith('.')) continue;
    const braced = /^\{([^}]*)\}$/.exec(names?.trim() ?? '');
    if (braced !== null && braced[1]!.split(',').every((name) => name.trim() === '' || name.trim().startsWith('type '))) continue;
    found.push(resolve(specifier!));
  }
  return found;
}

/** Every module reachable from `entry` by its imports, each with the chain that reached it. */
function importGraph(entry: string): Map<string, string[]> {
  const chains = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (file.startsWith(GENERATED) || !existsSync(file)) continue;
    for (const next of importsOf(file)) {
      if (chains.has(next)) continue;
      chains.set(next, [...chains.get(file)!, next]);
      queue.push(next);
    }
  }
  return chains;
}

describe('the modules the CLI loads at its start', () => {
  it('follows the commands the dispatcher loads when they run', () => {
    const imports = importsOf(CLI_ENTRY).map((file) => path.relative(REPO_ROOT, file));
    expect(imports).toEqual(expect.arrayContaining(['tools/builder/command.ts', 'tools/test/test-command.ts', 'tools/cli/vm-command.ts']));
  });

  it('reads static imports and leaves out type-only ones', () => {
    const imports = importsOf(path.join(REPO_ROOT, 'native', 'index.ts')).map((file) => path.relative(REPO_ROOT, file));
    expect(imports).toContain('native/api.ts');
    expect(importsOf(path.join(REPO_ROOT, 'native', 'api.ts')).map((file) => path.relative(REPO_ROOT, file))).toContain('native/generated/header-names.ts');
  });

  it('import nothing the build writes, so that `mmapkit build` starts on a fresh clone', () => {
    const reached = [...importGraph(CLI_ENTRY)].filter(([file]) => file.startsWith(GENERATED));
    expect(reached.map(([, chain]) => chain.map((file) => path.relative(REPO_ROOT, file)).join(' -> '))).toEqual([]);
  });
});
