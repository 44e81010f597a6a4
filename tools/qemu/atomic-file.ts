/**
 * Cached boot files (the extracted vmlinux, the initramfs) are written while
 * other commands in the same checkout may be booting from them: each writer
 * stages its own copy and renames it into place, so a reader sees the old
 * file or the whole new one, never a half-written one. Two writers of the
 * same file write the same bytes; the last rename wins.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';

/** This process's staging name for `target`: renamed into place once whole. */
export const stagedPath = (target: string): string => `${target}.${process.pid}.partial`;

export function replaceAtomically(target: string, data: Uint8Array): void {
  const staged = stagedPath(target);
  try {
    writeFileSync(staged, data);
    renameSync(staged, target);
  } finally {
    rmSync(staged, { force: true });
  }
}
