// The CLI's bundle (bin/cli-bundle.js): made once, made again when a source changes or build output
// it imports appears, and each module sees its own source's import.meta.url, as under tsx.
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Layout, cliEntry } from '../../bin/cli-bundle.js';
import { scratchDir } from '../scratch-dir.js';

const scratch = scratchDir('mmapkit-cli-bundle-');

/**
 * A file written a minute ago: one written within a second of the bundle is taken as changed while
 * it was made, and bundled again next time.
 */
function write(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  const then = new Date(Date.now() - 60_000);
  utimesSync(file, then, then);
}

/** A checkout in small: an entry that loads a command lazily, the command importing build output. */
function checkout(name: string): Layout {
  const root = path.join(scratch(), name);
  const file = (relative: string, text: string): void => write(path.join(root, relative), text);
  file('tools/cli/main.ts', [
    "import { spelled, where } from '../paths.js';",
    'export const mainUrl: string = import.meta.url;',
    'export { spelled, where };',
    "export const command = async (): Promise<string> => (await import('../command.js')).greeting;",
    '',
  ].join('\n'));
  // A string that spells the name is not the name (tools/builder/build.ts has one).
  file('tools/paths.ts', "export const where = (): string => import.meta.url;\nexport const spelled = 'import.meta.url';\n");
  file('tools/command.ts', "import { NAME } from '../native/generated/names.js';\nexport const greeting = `hello ${NAME}`;\n");
  return { root, entry: path.join(root, 'tools/cli/main.ts'), out: path.join(root, 'build/cli'), generated: path.join(root, 'native/generated') };
}

interface Bundled {
  mainUrl: string;
  spelled: string;
  where: () => string;
  command: () => Promise<string>;
}

const load = async (entry: string): Promise<Bundled> => (await import(pathToFileURL(entry).href)) as Bundled;

describe('the CLI bundle', () => {
  it('is made once and used again while no source changes; a changed source makes another', async () => {
    const layout = checkout('reuse');
    write(path.join(layout.generated, 'names.ts'), "export const NAME = 'world';\n");
    const first = await cliEntry(layout);
    expect(await cliEntry(layout)).toBe(first);
    const source = path.join(layout.root, 'tools/paths.ts');
    write(source, "export const where = (): string => `changed ${import.meta.url}`;\nexport const spelled = '';\n");
    const second = await cliEntry(layout);
    expect(second).not.toBe(first);
    expect((await load(second)).where()).toBe(`changed ${pathToFileURL(source).href}`);
  });

  it('gives each module its own source\'s import.meta.url, and keeps a command a chunk loaded when it runs', async () => {
    const layout = checkout('urls');
    write(path.join(layout.generated, 'names.ts'), "export const NAME = 'world';\n");
    const bundled = await load(await cliEntry(layout));
    expect(bundled.mainUrl).toBe(pathToFileURL(layout.entry).href);
    expect(bundled.where()).toBe(pathToFileURL(path.join(layout.root, 'tools/paths.ts')).href);
    expect(bundled.spelled).toBe('import.meta.url');
    expect(await bundled.command()).toBe('hello world');
    const main = readFileSync(await cliEntry(layout), 'utf8');
    expect(main, 'the command is not in the main module').not.toContain('hello ');
  });

  it('removes bundles left from hours ago when it makes one, and keeps recent ones, which a running CLI may still load from', async () => {
    const layout = checkout('prune');
    write(path.join(layout.generated, 'names.ts'), "export const NAME = 'world';\n");
    const old = path.join(layout.out, 'old-1');
    const recent = path.join(layout.out, 'recent-1');
    for (const dir of [old, recent]) mkdirSync(dir, { recursive: true });
    const hoursAgo = new Date(Date.now() - 7 * 3600 * 1000);
    utimesSync(old, hoursAgo, hoursAgo);
    const entry = await cliEntry(layout);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(recent)).toBe(true);
    expect(existsSync(entry)).toBe(true);
  });

  it('bundles before the build output exists, says what to run when it is needed, and bundles again once it exists', async () => {
    const layout = checkout('missing');
    const before = await cliEntry(layout);
    const bundled = await load(before);
    expect(bundled.where()).toContain('tools/paths.ts');
    await expect(bundled.command()).rejects.toThrow('native/generated/names.ts is not built yet: run `make build`');
    write(path.join(layout.generated, 'names.ts'), "export const NAME = 'built';\n");
    const after = await cliEntry(layout);
    expect(after).not.toBe(before);
    expect(await (await load(after)).command()).toBe('hello built');
  });
});
