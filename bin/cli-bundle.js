// The CLI's TypeScript, bundled by esbuild into build/cli/ and bundled again
// whenever one of its sources changed: bin/mmapkit.js runs the bundle with
// plain node.
//
// Why not tsx, as before: its loader hooks run on a thread of their own, and
// every module the CLI or vitest loads took a round trip there. `mmapkit
// --help` took 0.40-0.48 s so, 0.17-0.19 s from a bundle, and every
// command paid the difference before its first step (docs/benchmarks.md);
// `mmapkit test` had to load vitest before the hooks to keep it off them.
//
// Plain JavaScript: it runs before anything can compile TypeScript.
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles older than this, other than the current one, are removed; a CLI still running one loads its chunks lazily. */
const KEPT_MS = 6 * 3600 * 1000;

/**
 * @typedef {object} Layout
 * @property {string} root the checkout
 * @property {string} entry the CLI's main module
 * @property {string} out where the bundles and the record of the current one live
 * @property {string} generated build output the sources import (native/generated/): bundled when it exists
 */

/** @type {Layout} */
export const CLI_LAYOUT = {
  root: ROOT,
  entry: path.join(ROOT, 'tools', 'cli', 'main.ts'),
  out: path.join(ROOT, 'build', 'cli'),
  generated: path.join(ROOT, 'native', 'generated'),
};

/** @typedef {[number, number] | null} Stamp */

/**
 * What decides whether a file changed: its modification time and size; null for a file that does not exist.
 * @param {string} file
 * @returns {Stamp}
 */
function stampOf(file) {
  try {
    const { mtimeMs, size } = statSync(file);
    return [mtimeMs, size];
  } catch {
    return null;
  }
}

/** @type {(a: Stamp, b: Stamp) => boolean} */
const sameStamp = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * @typedef {object} BundleRecord
 * @property {string} entry the bundle's main module, from the output directory
 * @property {Record<string, Stamp>} inputs every file it was made from, by its path from the checkout
 */

/**
 * The current bundle's main module, or undefined when there is none or one of its inputs changed.
 * @param {Layout} layout
 * @returns {string | undefined}
 */
function currentEntry(layout) {
  /** @type {BundleRecord} */
  let record;
  try {
    record = JSON.parse(readFileSync(path.join(layout.out, 'current.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const unchanged = Object.entries(record.inputs).every(([file, stamp]) => sameStamp(stampOf(path.join(layout.root, file)), stamp));
  return unchanged ? path.join(layout.out, record.entry) : undefined;
}

/**
 * Each module's import.meta.url is its own source's URL, as it was under tsx: tools/paths.ts finds
 * the checkout from it, native/index.ts the addon. Replaced as esbuild's define replaces a name, in
 * the code and not in strings (tools/builder/build.ts spells 'import.meta.url' in one), the file's
 * own source map inline, which the bundle's map follows back to the TypeScript.
 * @param {typeof import('esbuild')} esbuild
 * @returns {import('esbuild').Plugin}
 */
function ownUrls(esbuild) {
  return {
    name: 'own-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async ({ path: file }) => {
        const { code } = await esbuild.transform(readFileSync(file, 'utf8'), {
          loader: 'ts',
          define: { 'import.meta.url': JSON.stringify(pathToFileURL(file).href) },
          sourcefile: file,
          sourcemap: 'inline',
        });
        return { contents: code, loader: 'js' };
      });
    },
  };
}

/**
 * Build output the sources import, before the build made it (a fresh clone's `mmapkit build`, which
 * writes it): a module that throws when it is loaded, which no command does before the build
 * (test/unit/startup-imports.test.ts). Its absence is an input, so the next start bundles again.
 * @param {Layout} layout
 * @param {Set<string>} missing filled with the build output found missing
 * @returns {import('esbuild').Plugin}
 */
function missingOutput(layout, missing) {
  return {
    name: 'missing-build-output',
    setup(build) {
      /** @param {string} file */
      const inGenerated = (file) => file.startsWith(layout.generated + path.sep);
      build.onResolve({ filter: /^\./ }, ({ path: specifier, resolveDir }) => {
        const file = path.resolve(resolveDir, specifier).replace(/\.js$/, '.ts');
        if (!inGenerated(file) || stampOf(file) !== null) return undefined;
        missing.add(file);
        return { path: file, namespace: 'missing-build-output' };
      });
      build.onLoad({ filter: /.*/, namespace: 'missing-build-output' }, ({ path: file }) => ({
        contents: `throw new Error(${JSON.stringify(`${path.relative(layout.root, file)} is not built yet: run \`make build\``)});`,
        loader: 'js',
      }));
    },
  };
}

/**
 * Bundles the CLI into a directory of its own and makes it the current one; returns its main module.
 * @param {Layout} layout
 * @returns {Promise<string>}
 */
async function bundle(layout) {
  const esbuild = await import('esbuild');
  const started = Date.now();
  const name = `${started.toString(36)}-${process.pid}`;
  /** @type {Set<string>} */
  const missing = new Set();
  const result = await esbuild.build({
    entryPoints: { main: layout.entry },
    absWorkingDir: layout.root,
    bundle: true,
    // Each command's module stays a chunk of its own, loaded when it runs (tools/cli/main.ts), with
    // the packages it imports.
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    outdir: path.join(layout.out, name),
    outExtension: { '.js': '.mjs' },
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
    plugins: [missingOutput(layout, missing), ownUrls(esbuild)],
  });
  /** @type {BundleRecord['inputs']} */
  const inputs = {};
  for (const file of Object.keys(result.metafile.inputs)) {
    if (file.startsWith('missing-build-output:')) continue;
    const absolute = path.resolve(layout.root, file);
    // A file written while the bundle was made may be bundled as it was before: asked again next time.
    const stamp = stampOf(absolute);
    inputs[path.relative(layout.root, absolute)] = stamp !== null && stamp[0] >= started - 1000 ? [0, -1] : stamp;
  }
  for (const file of missing) inputs[path.relative(layout.root, file)] = null;
  inputs[path.relative(layout.root, fileURLToPath(import.meta.url))] = stampOf(fileURLToPath(import.meta.url));
  /** @type {BundleRecord} */
  const record = { entry: path.join(name, 'main.mjs'), inputs };
  const current = path.join(layout.out, 'current.json');
  // Renamed into place: CLIs started side by side read a whole record or the one before.
  writeFileSync(`${current}.${process.pid}`, JSON.stringify(record));
  renameSync(`${current}.${process.pid}`, current);
  prune(layout, name, started);
  return path.join(layout.out, record.entry);
}

/**
 * @param {Layout} layout
 * @param {string} keep the current bundle's directory
 * @param {number} now
 */
function prune(layout, keep, now) {
  for (const entry of readdirSync(layout.out, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === keep) continue;
    const dir = path.join(layout.out, entry.name);
    // Another CLI pruning at the same moment may have removed it already.
    const stamp = stampOf(dir);
    if (stamp !== null && now - stamp[0] > KEPT_MS) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The CLI's main module, bundled again first if a source changed since the current bundle was made.
 * @param {Layout} layout
 * @returns {Promise<string>}
 */
export async function cliEntry(layout = CLI_LAYOUT) {
  const entry = currentEntry(layout);
  if (entry !== undefined) return entry;
  mkdirSync(layout.out, { recursive: true });
  return bundle(layout);
}
