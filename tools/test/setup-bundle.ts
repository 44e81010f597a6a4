/**
 * A profile's "setup" is TypeScript anywhere on the host; the guest agent
 * runs it. Before the guest boots, `mmapkit test` bundles each setup with
 * esbuild (as the build bundles the agent) into one ES module under
 * build/setups/ in the checkout, which the guest sees read-only at the same
 * path (tools/qemu/guest-view.ts): the setup's own imports (the struct
 * helpers of guest/ioctl-layout.ts, say) come with it, and nothing of the
 * host beyond the checkout has to be shared.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../exit-codes.js';
import { BUILD_DIR } from '../paths.js';
import type { Profile } from '../profile.js';
import { replaceAtomically } from '../qemu/atomic-file.js';

export const SETUPS_DIR = path.join(BUILD_DIR, 'setups');

/** Where the bundle of the setup module at `module` (an absolute host path) goes: one name per source path, so that runs side by side agree. */
export function setupBundlePath(module: string): string {
  const stem = path.basename(module).replace(/\.[^.]+$/, '');
  const digest = createHash('sha256').update(module).digest('hex').slice(0, 12);
  return path.join(SETUPS_DIR, `${stem}-${digest}.mjs`);
}

/** Bundles every profile's setup; a missing module or one that does not bundle is a bad profile (exit 2), named in one line. */
export async function bundleSetups(profiles: readonly Profile[]): Promise<void> {
  const modules = new Map<string, string>();
  for (const profile of profiles) {
    if (profile.setup === undefined) continue;
    const where = path.basename(profile.file);
    if (!existsSync(profile.setup.module)) throw new UserError(`${where}: "setup" ${profile.setup.module} does not exist`);
    modules.set(profile.setup.module, where);
  }
  if (modules.size === 0) return;
  const { build } = await import('esbuild');
  mkdirSync(SETUPS_DIR, { recursive: true });
  for (const [module, where] of modules) {
    let bundled: Uint8Array;
    try {
      const result = await build({ entryPoints: [module], bundle: true, platform: 'node', format: 'esm', target: 'node20', write: false, logLevel: 'silent' });
      bundled = result.outputFiles[0]!.contents;
    } catch (error) {
      const first = (error as { errors?: { text: string }[] }).errors?.[0]?.text ?? (error as Error).message;
      throw new UserError(`${where}: "setup" ${module} does not bundle: ${first}`);
    }
    // Runs side by side may bundle the same setup: each renames its whole file into place.
    replaceAtomically(setupBundlePath(module), bundled);
  }
}
